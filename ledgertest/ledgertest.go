// Package ledgertest is the shared harness of ledgerd's integration tests:
// a real PostgreSQL (started once per test binary from the system's
// binaries, or DATABASE_URL's server when set), a freshly migrated database
// per test cloned from a template, and an API node on a free loopback port.
package ledgertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/atrest"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/pgcluster"
	"github.com/ledgerd/ledgerd/postgres"
)

var (
	cluster   *pgcluster.Cluster
	bouncer   *pgcluster.PgBouncer
	serverURL *url.URL // admin URL of the server (database part replaced per test)
	template  = "ledgerd_template"
	dbSeq     atomic.Int64
	setupOnce sync.Once
	setupErr  error
)

// Main runs a test binary's tests around a PostgreSQL server: the one in
// DATABASE_URL, or a temporary cluster it starts and stops itself.
func Main(m *testing.M) {
	code := m.Run()
	if bouncer != nil {
		_ = bouncer.Stop()
	}
	if cluster != nil {
		_ = cluster.Stop()
	}
	os.Exit(code)
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"max_connections": "300"}})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		cluster = c
		raw = c.URL("postgres")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	serverURL = u
	// A unique template per test binary, so packages running in parallel
	// against one DATABASE_URL server do not share it.
	template = fmt.Sprintf("ledgerd_tpl_%d_%s", os.Getpid(), randHex(3))
	conn, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL(template), MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	// The template is made directly (PgBouncer would keep server
	// connections to it open, and CREATE DATABASE … TEMPLATE refuses a
	// template in use); the tests' own databases are reached through it.
	if os.Getenv("LEDGERD_TEST_PGBOUNCER") == "1" {
		if cluster == nil {
			return fmt.Errorf("LEDGERD_TEST_PGBOUNCER=1 needs the test cluster (unset DATABASE_URL)")
		}
		if bouncer, err = cluster.StartPgBouncer(ctx); err != nil {
			return err
		}
	}
	return nil
}

// testURL is the URL a test gets for database name: through PgBouncer
// (marked for ledgerd with ledgerd_pooler) when LEDGERD_TEST_PGBOUNCER=1.
func testURL(name string) string {
	if bouncer == nil {
		return dbURL(name)
	}
	return bouncer.URL(name) + "&ledgerd_pooler=pgbouncer"
}

// ThroughPgBouncer reports whether the tests' databases are reached
// through PgBouncer (LEDGERD_TEST_PGBOUNCER=1).
func ThroughPgBouncer() bool {
	setupOnce.Do(func() { setupErr = setup() })
	return bouncer != nil
}

// DirectURL turns a URL from NewDatabase into one to the server itself,
// for tests that need session state (LISTEN, a session setting) or plain
// pgx connections.
func DirectURL(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return dbURL(strings.TrimPrefix(u.Path, "/"))
}

func dbURL(name string) string {
	u := *serverURL
	u.Path = "/" + name
	return u.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewDatabase returns the URL of a new, migrated, empty database, dropped
// when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "") // the template is known only after setup
}

// NewEmptyDatabase returns the URL of a new database without any schema,
// dropped when the test ends: for tests that apply migrations step by step.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	// template0 rather than template1: nothing a server's admin added to
	// template1 can leak into the schema under test.
	return newDatabase(t, "template0")
}

func newDatabase(t testing.TB, from string) string {
	t.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if from == "" {
		from = template
	}
	if setupErr != nil {
		if os.Getenv("CI") != "true" && strings.Contains(setupErr.Error(), "binaries") {
			t.Skip(setupErr)
		}
		t.Fatal(setupErr)
	}
	name := fmt.Sprintf("ledgerd_t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 0; ; i++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+from)
		if err == nil || i == 50 || !strings.Contains(err.Error(), "being accessed") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dbURL("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return testURL(name)
}

// Cluster returns the temporary cluster, or nil when DATABASE_URL is used
// (tests that restart PostgreSQL skip then).
func Cluster(t testing.TB) *pgcluster.Cluster {
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return cluster
}

// AdminKey is the bootstrap key of every test node.
const AdminKey = "test-admin-key-0123456789abcdef0123456789"

// Options tune a test node.
type Options struct {
	DatabaseURL   string // empty: a new database
	RateLimit     float64
	RateBurst     int
	BatchMaxItems int
	Commit        batch.Config
	PoolMaxConns  int32
	// Tracer sees every query the node runs (for query-count bounds).
	Tracer pgx.QueryTracer
	// AcquireTimeout bounds the wait for a pooled connection (default 2 s).
	AcquireTimeout time.Duration
	// API, when set, adjusts the API's configuration before the node starts.
	API func(*httpapi.Config)
	// Replicas, when set, are read replicas of DatabaseURL's database.
	Replicas *postgres.ReplicaConfig
	// WebhookAllowPrivate lets endpoints point at loopback receivers.
	WebhookAllowPrivate bool
	// Archive reads archived months (package archive's Reader).
	Archive postgres.ArchiveReader
	// SecretKeys seal webhook signing secrets at rest (nil: plaintext).
	SecretKeys *atrest.Keys
}

// Env is one API node on a loopback port, with its database.
type Env struct {
	t           testing.TB
	URL         string
	DatabaseURL string
	DB          *postgres.DB
	Client      *http.Client
}

// Start starts an in-process API node (the same wiring as `ledgerd serve`).
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.DatabaseURL == "" {
		o.DatabaseURL = NewDatabase(t)
	}
	if o.PoolMaxConns == 0 {
		o.PoolMaxConns = 16
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: o.DatabaseURL, MaxConns: o.PoolMaxConns, Tracer: o.Tracer, AcquireTimeout: o.AcquireTimeout})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("LEDGERD_TEST_LOG") != "" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	db.ProblemStatus = httpapi.StatusOf
	db.Archive = o.Archive
	db.SecretKeys = o.SecretKeys
	w := batch.New(db.BatchStore(), o.Commit, log, nil, func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
	cfg := httpapi.Config{AdminKey: AdminKey, RateLimit: o.RateLimit, RateBurst: o.RateBurst,
		BatchMaxItems: o.BatchMaxItems, Logger: log, Webhooks: db, Monitors: db, Fraud: db, WebhookAllowPrivate: o.WebhookAllowPrivate}
	if o.API != nil {
		o.API(&cfg)
	}
	var replicas *postgres.Replicas
	if o.Replicas != nil {
		if replicas, err = postgres.OpenReplicas(ctx, db, *o.Replicas); err != nil {
			t.Fatal(err)
		}
	}
	cfg.CommitPosition = db.CommitPosition
	api := httpapi.NewServer(postgres.NewRouter(db, replicas), w, cfg)
	ectx, ecancel := context.WithCancel(context.Background())
	go w.ExpireHolds(ectx, db, 100*time.Millisecond, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		ecancel()
		w.Close()
		replicas.Close()
		db.Close()
	})
	return &Env{t: t, URL: "http://" + ln.Addr().String(), DatabaseURL: o.DatabaseURL, DB: db,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map (numbers as json.Number).
func (r *Response) JSON() map[string]any {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.UseNumber()
	_ = d.Decode(&m)
	return m
}

// Code is the problem code of an error answer.
func (r *Response) Code() string {
	s, _ := r.JSON()["code"].(string)
	return s
}

// Do sends a request with key as bearer (empty: none). body may be a
// string, []byte or any value to marshal. headers come in pairs.
func (e *Env) Do(method, path, key string, body any, headers ...string) *Response {
	e.t.Helper()
	r, err := e.TryDo(method, path, key, body, headers...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// TryDo is Do returning transport errors instead of failing the test.
func (e *Env) TryDo(method, path, key string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Expect fails the test unless the answer has the status (and, for
// errors, the problem code).
func (r *Response) Expect(t testing.TB, status int, code ...string) *Response {
	t.Helper()
	if r.Status != status || (len(code) > 0 && r.Code() != code[0]) {
		t.Fatalf("got %d %s, want %d %v", r.Status, r.Body, status, code)
	}
	return r
}

// Ledger creates a ledger and returns its name.
func (e *Env) Ledger(name string) string {
	e.t.Helper()
	e.Do("POST", "/v1/ledgers", AdminKey, map[string]any{"name": name}).Expect(e.t, 201)
	return name
}

// Key creates an API key of a role on a ledger and returns the secret.
func (e *Env) Key(ledger, role string) string {
	e.t.Helper()
	r := e.Do("POST", "/v1/api-keys", AdminKey, map[string]any{"ledger": ledger, "role": role}).Expect(e.t, 201)
	return r.JSON()["key"].(string)
}

// Account creates an account; minBalance nil means unbounded.
func (e *Env) Account(ledger, id, asset string, minBalance *int64) {
	e.t.Helper()
	body := map[string]any{"id": id, "asset": asset, "min_balance": minBalance}
	e.Do("POST", "/v1/ledgers/"+ledger+"/accounts", AdminKey, body).Expect(e.t, 201)
}

// Transfer posts one single-posting transaction and returns the answer.
func (e *Env) Transfer(ledger, from, to string, amount int64, asset string, headers ...string) *Response {
	e.t.Helper()
	body := map[string]any{"postings": []map[string]any{{"source": from, "destination": to, "amount": amount, "asset": asset}}}
	return e.Do("POST", "/v1/ledgers/"+ledger+"/transactions", AdminKey, body, headers...)
}

// Int64 is a helper for optional int64 fields.
func Int64(v int64) *int64 { return &v }
