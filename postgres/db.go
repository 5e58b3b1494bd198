// Package postgres is ledgerd's storage adapter: the schema and its
// migrations, the queries of the API, and the set-based write of a
// group-commit batch. Everything that speaks SQL lives here.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/atrest"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes the connection pool. The pool is a precious shared resource:
// sized for the real concurrency, and a caller that cannot get a connection
// within AcquireTimeout fails fast (503) instead of queueing without bound.
type Config struct {
	URL            string
	MaxConns       int32
	MinConns       int32
	AcquireTimeout time.Duration
	// Tracer, when set, sees every query (tests count queries with it;
	// tracing will hook in here).
	Tracer pgx.QueryTracer
	// AsyncCommit turns synchronous_commit off on the pool's connections:
	// only for the asynchronous tail's own pool, whose transactions are
	// bookkeeping that a crash may roll back by a few hundred
	// milliseconds without losing anything (docs/design/tail.md,
	// "Durability of the tail's bookkeeping"). Never for the API's pool.
	AsyncCommit bool
	// PgBouncer says the URL reaches PostgreSQL through PgBouncer in
	// transaction mode (also set by ledgerd_pooler=pgbouncer in the URL):
	// no startup parameters beyond what it forwards, and no statement
	// prepared on a server connection, which the next transaction may not
	// get. See docs/pgbouncer.md.
	PgBouncer bool
}

// DB is a pool of connections to one database.
type DB struct {
	Pool *pgxpool.Pool
	// IdempotencyTTL is how long idempotency outcomes are kept (at least
	// 24 h; default DefaultIdempotencyTTL).
	IdempotencyTTL time.Duration
	// BalanceCheckpoint is how often a ledger writer brings the account
	// rows it has moved up to date (default DefaultBalanceCheckpoint); a
	// negative value writes them in every commit. See checkpoint.go.
	BalanceCheckpoint time.Duration
	// ProblemStatus gives the status stored beside a rejection kept for
	// replay in idempotency_keys.status (for operators reading the table:
	// a replay answers from the stored code, not from this column). The
	// API owns the mapping (httpapi.StatusOf); unset, 0 is stored.
	ProblemStatus func(ledgerd.Code) int
	// Clock, when set, is the time new transactions are created at (and
	// so the month their ids fall in) instead of the clock's: for tests
	// and tools that write history into past months. Never set in a
	// running server.
	Clock func() time.Time
	// SecretKeys seal the webhook endpoints' signing secrets before they
	// are stored and open them when read (webhooksecrets.go); nil stores
	// new secrets in plaintext. Every node and worker of a database needs
	// the keys that sealed its secrets.
	SecretKeys *atrest.Keys
	// Archive reads archived months for balance history and statements
	// (archiveread.go); nil on a node without the archive's bucket, which
	// then answers those reads 503.
	Archive        ArchiveReader
	acquireTimeout time.Duration
	pgBouncer      bool
	// lastLSN is the newest commit position this node has seen on the
	// primary: every write's Consistency-Token (see consistency.go).
	lastLSN atomic.Uint64
	// acquireTimeouts counts acquires that ran out of acquireTimeout (each
	// a 503); acquireWait, once RegisterMetrics ran, times every acquire.
	acquireTimeouts atomic.Int64
	acquireWait     atomic.Pointer[prometheus.Histogram]
	stats           atomic.Pointer[Stats]
}

// ErrUnavailable marks failures where the database could not be reached or
// the pool had no free connection in time: the request did not happen and
// may be retried (503 overloaded).
// It is the domain's ledgerd.ErrUnavailable.
var ErrUnavailable = ledgerd.ErrUnavailable

// Open connects a pool. It does not wait for the database to be reachable.
func Open(ctx context.Context, c Config) (*DB, error) {
	url, pooler, err := poolerOf(c.URL)
	if err != nil {
		return nil, err
	}
	c.PgBouncer = c.PgBouncer || pooler
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if c.MaxConns > 0 {
		pc.MaxConns = c.MaxConns
	}
	if c.MinConns > 0 {
		pc.MinConns = c.MinConns
	}
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 10 * time.Second
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	// Durability is the product: never let a connection default weaken it.
	// PgBouncer refuses this startup parameter; through it, every batch
	// transaction sets it locally and CheckDurability checks the server's
	// default at start (see docs/pgbouncer.md). The tail's own pool
	// (AsyncCommit) turns it off for its bookkeeping on a direct
	// connection; through PgBouncer it keeps the server's default, which
	// costs the tail speed, never safety.
	switch {
	case c.PgBouncer:
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	case c.AsyncCommit:
		pc.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	default:
		pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "ledgerd"
	if c.Tracer != nil {
		pc.ConnConfig.Tracer = c.Tracer
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	at := c.AcquireTimeout
	if at <= 0 {
		at = 2 * time.Second
	}
	return &DB{Pool: pool, acquireTimeout: at, pgBouncer: c.PgBouncer}, nil
}

func (db *DB) problemStatus(c ledgerd.Code) int {
	if db.ProblemStatus == nil {
		return 0
	}
	return db.ProblemStatus(c)
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// acquire takes a connection, waiting at most the acquire timeout.
func (db *DB) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, db.acquireTimeout)
	defer cancel()
	start := time.Now()
	c, err := db.Pool.Acquire(actx)
	if h := db.acquireWait.Load(); h != nil {
		(*h).Observe(time.Since(start).Seconds())
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if actx.Err() != nil {
			db.acquireTimeouts.Add(1)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return c, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	c, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Ping(ctx)
}

// classify is the one place where a storage failure becomes a domain
// error: an error for which IsUnavailable holds is returned wrapping
// ledgerd.ErrUnavailable (a commit of unknown outcome stays what it is).
// Every query helper and the batch writes return classified errors.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ledgerd.ErrCommitUnknown) || !IsUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// IsUnavailable reports whether err means the database could not be used
// (connection refused or lost, server shutting down, pool exhausted): the
// operation may be retried, and the API answers 503 rather than 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention (shutdown), insufficient resources
			return true
		}
		if pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "55P03" { // serialization, deadlock, lock timeout
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	if errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A connection that died mid-statement surfaces as an unexpected EOF or
	// a closed-connection error without a SQLSTATE.
	var pe2 *pgconn.PgError
	return !errors.As(err, &pe2) && isConnClosed(err)
}

func isConnClosed(err error) bool {
	s := err.Error()
	for _, m := range []string{"conn closed", "unexpected EOF", "connection reset", "broken pipe", "EOF", "failed to deallocate", "receive message", "write failed"} {
		if contains(s, m) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// now is t, or the Clock's time when one is set.
func (db *DB) now(t time.Time) time.Time {
	if db.Clock != nil {
		return db.Clock()
	}
	return t
}
