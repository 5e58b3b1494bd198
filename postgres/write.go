package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledgerd/ledgerd"
)

// CommitUnknownError means the connection failed while COMMIT was in
// flight: the batch may or may not have committed. The writer resolves it
// with BatchCommitted before answering anyone.
type CommitUnknownError struct {
	LedgerID int64
	// FirstID is the id of the first transaction the batch wrote (zero
	// when it wrote none).
	FirstID pgtype.UUID
	Err     error
}

func (e *CommitUnknownError) Error() string { return "commit outcome unknown: " + e.Err.Error() }
func (e *CommitUnknownError) Unwrap() error { return e.Err }

// BatchCommitted reports whether the batch of a CommitUnknownError is in the
// database. ok is false when that cannot be told.
func (db *DB) BatchCommitted(ctx context.Context, e *CommitUnknownError) (committed, ok bool) {
	if !e.FirstID.Valid {
		return false, false
	}
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM transactions WHERE id = $1 AND ledger_id = $2`, e.FirstID, e.LedgerID).Scan(&n)
	if err != nil {
		return false, false
	}
	return n == 1, true
}

// newTxID returns a UUIDv7 for a transaction created at t. Its first 48 bits
// are t in milliseconds, which is what the monthly partitions range on.
func newTxID(t time.Time) pgtype.UUID { return TransactionIDAt(t, rand.Uint64) }

// TransactionIDAt is the transaction id layout (UUIDv7, time in the first
// 48 bits) with the random bits drawn from random; exported for tools that
// generate data, such as scripts/explaindb.
func TransactionIDAt(t time.Time, random func() uint64) pgtype.UUID {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	r1, r2 := random(), random()
	u[6] = 0x70 | byte(r1&0x0f)
	u[7] = byte(r1 >> 8)
	u[8] = 0x80 | byte((r1>>16)&0x3f)
	for i := 9; i < 16; i++ {
		u[i] = byte(r2 >> (8 * (i - 9)))
	}
	return pgtype.UUID{Bytes: u, Valid: true}
}

// storedProblem is how a business rejection is kept for replay.
type storedProblem struct {
	Code          ledgerd.Code `json:"code"`
	Detail        string       `json:"detail"`
	TransactionID string       `json:"transaction_id,omitempty"`
}

// batchRows accumulates the set-based writes of one batch, column by column.
type batchRows struct {
	// transactions
	txPendingID, txReverses          []pgtype.UUID
	txID                             []pgtype.UUID
	txSeq                            []int64
	txStatus, txPostings, txMetadata []string
	txRef                            []*string
	txExpires                        []*time.Time
	// entries
	enTx                                []pgtype.UUID
	enAccount                           []string
	enSeq, enAmount, enAfter, enVersion []int64
	enPD, enPC                          []int64 // pending totals after the transaction (stored NULL when 0)
	enIndex                             []int16
	enPending                           []bool
	// references
	refRef []string
	refTx  []pgtype.UUID
	// idempotency outcomes
	ikKey     []string
	ikHash    [][]byte
	ikStatus  []int16
	ikTx      []pgtype.UUID
	ikProblem []*string
}

type rowsMark struct{ tx, en, ref, ik int }

// grow sizes the columns for n transactions (two entries each for the
// common single posting), so appending under the lock does not copy.
func (r *batchRows) grow(n, keys, refs int) {
	r.txID, r.txSeq, r.txStatus = make([]pgtype.UUID, 0, n), make([]int64, 0, n), make([]string, 0, n)
	r.txPostings, r.txMetadata, r.txRef = make([]string, 0, n), make([]string, 0, n), make([]*string, 0, n)
	r.txExpires, r.txPendingID, r.txReverses = make([]*time.Time, 0, n), make([]pgtype.UUID, 0, n), make([]pgtype.UUID, 0, n)
	e := 2 * n
	r.enTx, r.enAccount, r.enSeq, r.enAmount = make([]pgtype.UUID, 0, e), make([]string, 0, e), make([]int64, 0, e), make([]int64, 0, e)
	r.enAfter, r.enVersion, r.enIndex, r.enPending = make([]int64, 0, e), make([]int64, 0, e), make([]int16, 0, e), make([]bool, 0, e)
	r.enPD, r.enPC = make([]int64, 0, e), make([]int64, 0, e)
	r.refRef, r.refTx = make([]string, 0, refs), make([]pgtype.UUID, 0, refs)
	r.ikKey, r.ikHash, r.ikStatus = make([]string, 0, keys), make([][]byte, 0, keys), make([]int16, 0, keys)
	r.ikTx, r.ikProblem = make([]pgtype.UUID, 0, keys), make([]*string, 0, keys)
}

func (r *batchRows) mark() rowsMark {
	return rowsMark{len(r.txID), len(r.enTx), len(r.refRef), len(r.ikKey)}
}

func (r *batchRows) truncate(m rowsMark) {
	r.txID, r.txSeq, r.txStatus, r.txPostings = r.txID[:m.tx], r.txSeq[:m.tx], r.txStatus[:m.tx], r.txPostings[:m.tx]
	r.txMetadata, r.txRef, r.txExpires = r.txMetadata[:m.tx], r.txRef[:m.tx], r.txExpires[:m.tx]
	r.txPendingID, r.txReverses = r.txPendingID[:m.tx], r.txReverses[:m.tx]
	r.enTx, r.enAccount, r.enSeq, r.enAmount = r.enTx[:m.en], r.enAccount[:m.en], r.enSeq[:m.en], r.enAmount[:m.en]
	r.enAfter, r.enVersion, r.enIndex, r.enPending = r.enAfter[:m.en], r.enVersion[:m.en], r.enIndex[:m.en], r.enPending[:m.en]
	r.enPD, r.enPC = r.enPD[:m.en], r.enPC[:m.en]
	r.refRef, r.refTx = r.refRef[:m.ref], r.refTx[:m.ref]
	r.ikKey, r.ikHash, r.ikStatus, r.ikTx, r.ikProblem = r.ikKey[:m.ik], r.ikHash[:m.ik], r.ikStatus[:m.ik], r.ikTx[:m.ik], r.ikProblem[:m.ik]
}

// idemState is what the batch knows of a key: stored before, or decided
// earlier in this batch.
type idemState struct {
	hash []byte
	tx   *ledgerd.Transaction
	err  *ledgerd.Error
}

// targetState is an existing transaction an action touches, locked for the
// batch; changes to it are written once, at the end.
type targetState struct {
	tx      *ledgerd.Transaction
	changed bool
}

// batchState is one WriteBatch: what it loaded under the lock, and what
// it will write.
type batchState struct {
	ledgerID int64
	book     *ledgerd.Book
	idem     map[string]*idemState
	// expiredKeys are stored keys past their expiry, deleted before reuse.
	expiredKeys []string
	refTaken    map[string]string
	targets     map[string]*targetState
	seq         int64
	// firstSeq is the first sequence number this batch may assign.
	firstSeq int64
	at       time.Time
	rows     batchRows
	firstID  pgtype.UUID
	legs     []ledgerd.Leg
	// ckpt is the account rows the commit writes (planCheckpoint);
	// behind, the accounts read whose row lags behind their entries.
	ckpt   checkpointRows
	behind []string
}

// loadAccountsSQL reads the accounts a batch touches. It takes no row
// locks: every writer of an account row (this batch writer, and PATCH of
// an account) holds the ledger's ordering lock while it writes, so the
// rows cannot change under the batch. A FOR UPDATE here would only add a
// WAL record per account per batch (measured with pg_stat_statements: the
// locking read was the costliest statement of a batch, ~18 µs a row).
//
// Balances come from the row or the account's newest entry (accountHead);
// the row's own version tells whether its checkpoint is behind.
var loadAccountsSQL = `SELECT a.id, a.asset, a.min_balance, ` + headBalanceCols + `, a.version
	FROM ` + accountHead(`unnest($1::bigint[], $2::text[]) AS u(ledger_id, id)
	JOIN accounts a ON a.ledger_id = u.ledger_id AND a.id = u.id`)

func (st *batchState) queueLoadAccounts(b *pgx.Batch, ids []string) {
	b.Queue(loadAccountsSQL, repeat(st.ledgerID, len(ids)), ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var rowVersion int64
			a := &ledgerd.BookAccount{}
			if err := rows.Scan(&id, &a.Asset, &a.MinBalance, &a.Balance.Posted, &a.Balance.PendingDebits,
				&a.Balance.PendingCredits, &a.Version, &rowVersion); err != nil {
				return err
			}
			if rowVersion < a.Version {
				st.behind = append(st.behind, id)
			}
			st.book.Put(id, a)
		}
		return rows.Err()
	})
}

// WriteBatch applies the units in one database transaction under the
// ledger's ordering lock (SPEC §4): lock the ledger row, read the touched
// accounts in id order, apply every item in request order in memory, write
// the accepted rows with set-based statements, update each touched account
// once, commit. Every item's outcome is set on the item.
//
// It returns an error only when nothing can be answered from this attempt:
// an error for which IsUnavailable holds (nothing committed; callers may
// retry), a *CommitUnknownError, or another error meaning a known rollback
// (the batcher then retries item by item).
//
// cache, when not nil, is the ledger writer's AccountCache: accounts it
// holds are not read back while it is valid, and it is refreshed after a
// commit and dropped after any failure.
//
// WriteBatch is PrepareBatch, Apply and Commit in a row; the ledger
// writer runs those steps itself so that the next batch's first round
// trip overlaps the current batch's commit.
func (db *DB) WriteBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit, cache *AccountCache) (err error) {
	defer func() {
		if err != nil {
			cache.Invalidate()
		}
	}()
	if fb := db.PrepareFast(ledgerID, units, cache); fb != nil {
		err := fb.Commit(ctx, nil, nil)
		if err == nil {
			cache.FastCommitted()
			return nil
		}
		if !IsFastPathRetry(err) {
			return err // the deferred Invalidate runs
		}
		cache.Invalidate()
	}
	p, err := db.PrepareBatch(ctx, ledgerID, units, cache)
	if err != nil {
		return err
	}
	if err := p.Apply(); err != nil {
		p.Abort()
		return err
	}
	return p.Commit()
}

// PreparedBatch is a WriteBatch split into its steps. PrepareBatch sends
// the first pipeline (BEGIN, the ordering lock, the reads) and returns
// without waiting: when another batch of the ledger holds the lock,
// PostgreSQL queues this one behind it and runs its reads the moment that
// batch commits, with no round trip in between. Apply then reads the
// answers and decides every item in memory; Commit writes and commits.
// Abort gives up (before Commit). Every PreparedBatch ends with exactly
// one Commit or Abort, which releases its connection.
//
// The cache is read by PrepareBatch and written only by Apply (and by the
// caller's invalidate after a failure), so a PrepareBatch may run while an
// earlier batch of the same cache is between Apply and Commit; Apply must
// not run before that earlier batch's Commit has returned.
type PreparedBatch struct {
	db         *DB
	ctx        context.Context
	units      []*ledgerd.WriteUnit
	cache      *AccountCache
	conn       *pgxpool.Conn
	results    pgx.BatchResults
	st         *batchState
	nItems     int
	nKeys      int
	nRefs      int
	cached     []string
	optimistic bool
	lastAt     time.Time
	clock      time.Time
	epoch      int64
	released   bool
}

// PrepareBatch acquires a connection and sends the batch's first pipeline.
func (db *DB) PrepareBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit, cache *AccountCache) (*PreparedBatch, error) {
	accountSet := map[string]struct{}{}
	var keys, refs []string
	var targetIDs []pgtype.UUID
	for _, u := range units {
		for _, it := range u.Items {
			for _, p := range it.Request.Postings {
				accountSet[p.Source] = struct{}{}
				accountSet[p.Destination] = struct{}{}
			}
			if it.IdempotencyKey != "" {
				keys = append(keys, it.IdempotencyKey)
			}
			if it.Request.Reference != "" {
				refs = append(refs, it.Request.Reference)
			}
			if it.Action != nil {
				if id, err := uuid.Parse(it.Action.Target); err == nil {
					targetIDs = append(targetIDs, pgtype.UUID{Bytes: id, Valid: true})
				}
			}
		}
	}
	accountIDs := sortedKeys(accountSet)

	conn, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	nItems := 0
	for _, u := range units {
		nItems += len(u.Items)
	}
	st := &batchState{ledgerID: ledgerID, book: ledgerd.NewBook(len(accountIDs)), idem: make(map[string]*idemState, len(keys)),
		refTaken: map[string]string{}, targets: map[string]*targetState{}}
	pb := &PreparedBatch{db: db, ctx: ctx, units: units, cache: cache, conn: conn, st: st, nItems: nItems}
	// One round trip: the ordering lock first (statements of a pipeline run
	// in order), then everything the in-memory apply needs.
	var b pgx.Batch
	b.Queue("BEGIN")
	// Every statement of a batch is a set of point lookups or writes by
	// primary key. Statements are prepared once per connection; a plan
	// made while a table was small (a new deployment, a new ledger) picks
	// hash joins over sequential scans and keeps them as the table grows
	// (seen: 27 M tuples read from transaction_references in 10 s). Ruling
	// those out for this transaction keeps every lookup an index probe at
	// any size. With them ruled out the generic plan is the right one for
	// any array length, so force it: left to choose, the server kept
	// re-planning every statement with the arrays' actual values (a
	// profile of one-transfer batches: a quarter of the backend's CPU in
	// the planner, ~4.5 → ~2 ms of backend CPU per commit without it).
	b.Queue(batchSettingsSQL)
	b.Queue(`SELECT last_sequence, last_created_at, accounts_epoch FROM ledgers WHERE id = $1 FOR UPDATE`, ledgerID).
		QueryRow(func(r pgx.Row) error { return r.Scan(&st.seq, &pb.lastAt, &pb.epoch) })
	if len(targetIDs) > 0 {
		// No row locks: only batch writers change a transaction's status
		// and links, and they hold the ledger's ordering lock.
		b.Queue(`SELECT `+txCols+` FROM unnest($1::uuid[]) AS u(id) JOIN transactions t ON t.id = u.id
			WHERE t.ledger_id = $2`, targetIDs, ledgerID).
			Query(func(rows pgx.Rows) error {
				txs, err := scanTxRows(rows, len(targetIDs))
				if err != nil {
					return err
				}
				for _, t := range txs {
					if t.Postings, err = ledgerd.ParsePostingsJSON(t.RawPostings); err != nil {
						return err
					}
					st.targets[t.ID] = &targetState{tx: t}
				}
				return nil
			})
	}
	// With a usable cache, read only the accounts it does not hold; the
	// others are taken from it once the lock shows nobody else wrote.
	optimistic := cache.usable()
	var cached []string
	if optimistic {
		toLoad := accountIDs[:0:0]
		for _, id := range accountIDs {
			if _, ok := cache.accounts[id]; ok {
				cached = append(cached, id)
			} else {
				toLoad = append(toLoad, id)
			}
		}
		accountIDs = toLoad
	}
	if len(accountIDs) > 0 {
		st.queueLoadAccounts(&b, accountIDs)
	}
	// Probes and inserts go in index order: consecutive ones then share
	// B-tree pages instead of each landing on a cold one (see sortedPerm).
	slices.Sort(keys)
	slices.Sort(refs)
	if len(keys) > 0 {
		b.Queue(`SELECT k.key, k.expires_at <= clock_timestamp(), k.request_hash, k.status, k.problem, `+txCols+`
			FROM unnest($1::bigint[], $2::text[]) AS u(ledger_id, key)
			JOIN idempotency_keys k ON k.ledger_id = u.ledger_id AND k.key = u.key
			LEFT JOIN transactions t ON t.id = k.transaction_id`, repeat(ledgerID, len(keys)), keys).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var key string
					var expired bool
					var is idemState
					var status int16
					var problem []byte
					var s txScan
					if err := rows.Scan(append([]any{&key, &expired, &is.hash, &status, &problem}, s.dest()...)...); err != nil {
						return err
					}
					switch {
					case expired:
						// Kept past its time: the key is free again, and
						// the old record goes before the new one is stored.
						st.expiredKeys = append(st.expiredKeys, key)
						continue
					case s.id.Valid:
						is.tx = s.tx()
					case problem != nil:
						var p storedProblem
						if err := json.Unmarshal(problem, &p); err != nil {
							return fmt.Errorf("stored problem of key %q: %w", key, err)
						}
						is.err = &ledgerd.Error{Code: p.Code, Detail: p.Detail, TransactionID: p.TransactionID}
					default:
						// A key that holds another kind of outcome (an
						// account creation): any transaction with it is a
						// different request.
						is.hash = nil
					}
					st.idem[key] = &is
				}
				return rows.Err()
			})
	}
	if len(refs) > 0 {
		b.Queue(`SELECT r.reference, r.transaction_id FROM unnest($1::bigint[], $2::text[]) AS u(ledger_id, reference)
			JOIN transaction_references r ON r.ledger_id = u.ledger_id AND r.reference = u.reference`, repeat(ledgerID, len(refs)), refs).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var ref string
					var id pgtype.UUID
					if err := rows.Scan(&ref, &id); err != nil {
						return err
					}
					st.refTaken[ref] = uuidString(id)
				}
				return rows.Err()
			})
	}
	// The batch's time is read after the accounts, so it is never earlier
	// than the creation of an account the batch can see.
	b.Queue(`SELECT clock_timestamp()`).QueryRow(func(r pgx.Row) error { return r.Scan(&pb.clock) })
	pb.nKeys, pb.nRefs, pb.cached, pb.optimistic = len(keys), len(refs), cached, optimistic
	pb.results = conn.SendBatch(ctx, &b)
	return pb, nil
}

// release hands the connection back outside a transaction: the
// transaction is driven by hand rather than with pgx.Tx so that BEGIN
// travels in the first pipeline and COMMIT in the second (two round trips
// a batch), and whatever happened, nothing may leak into the next user.
func (pb *PreparedBatch) release() {
	if pb.released {
		return
	}
	pb.released = true
	if pb.results != nil {
		_ = pb.results.Close()
		pb.results = nil
	}
	pc := pb.conn.Conn().PgConn()
	if pc.TxStatus() != 'I' && !pc.IsClosed() {
		if _, err := pb.conn.Exec(context.WithoutCancel(pb.ctx), "ROLLBACK"); err != nil {
			pc.Close(context.WithoutCancel(pb.ctx))
		}
	}
	pb.conn.Release()
}

// Abort rolls the batch back and releases its connection. Nothing of it
// is written; its items' outcomes are meaningless.
func (pb *PreparedBatch) Abort() { pb.release() }

// Apply waits for the first pipeline's answers (the ordering lock is then
// held), loads what the cache could not vouch for, and decides every item
// in memory. The cache is updated as if the batch will commit: a later
// batch prepared meanwhile reads fewer accounts, and a failed Commit must
// be followed by invalidating the cache (WriteBatch and the writer do).
func (pb *PreparedBatch) Apply() error {
	ctx, conn, st, cache := pb.ctx, pb.conn, pb.st, pb.cache
	err := pb.results.Close()
	pb.results = nil
	if err != nil {
		return fmt.Errorf("load batch state: %w", err)
	}
	optimistic, cached, epoch := pb.optimistic, pb.cached, pb.epoch

	if cache != nil {
		if cache.fastOff > 0 {
			cache.fastOff-- // one more batch on the slow path
		}
		fresh := cache.valid && cache.seq == st.seq && cache.epoch == epoch
		cache.missed = !fresh
		if optimistic && !fresh && len(cached) > 0 {
			var mb pgx.Batch
			st.queueLoadAccounts(&mb, cached)
			if err := conn.SendBatch(ctx, &mb).Close(); err != nil {
				return fmt.Errorf("reload accounts: %w", err)
			}
		} else if optimistic {
			for _, id := range cached {
				a := cache.accounts[id]
				st.book.Put(id, &a)
			}
		}
		if !fresh {
			clear(cache.accounts)
			cache.valid = false
		}
	}

	// The accounts of the targets' postings are known only now; load the
	// ones not loaded yet (one more round trip, only for such batches).
	if len(st.targets) > 0 {
		more := map[string]struct{}{}
		for _, ts := range st.targets {
			for _, p := range ts.tx.Postings {
				for _, id := range []string{p.Source, p.Destination} {
					if st.book.Get(id) != nil {
						continue
					}
					if a, ok := cache.lookup(id); ok {
						st.book.Put(id, &a)
						continue
					}
					more[id] = struct{}{}
				}
			}
		}
		if len(more) > 0 {
			var mb pgx.Batch
			st.queueLoadAccounts(&mb, sortedKeys(more))
			if err := conn.SendBatch(ctx, &mb).Close(); err != nil {
				return fmt.Errorf("load target accounts: %w", err)
			}
		}
	}

	st.rows.grow(pb.nItems, pb.nKeys, pb.nRefs)
	st.firstSeq = st.seq + 1
	st.at = pb.clock.UTC().Truncate(time.Microsecond)
	if pb.lastAt.After(st.at) {
		st.at = pb.lastAt.UTC()
	}
	for _, u := range pb.units {
		st.applyUnit(u)
	}
	cache.remember(st.book, st.seq, epoch, st.at)
	st.planCheckpoint(cache, pb.db.balanceCheckpoint(), time.Now())
	return nil
}

// Commit writes the batch's rows, updates the touched accounts and
// commits, then releases the connection. Its error means what
// WriteBatch's does; the caller must then invalidate the cache.
func (pb *PreparedBatch) Commit() error {
	defer pb.release()
	ctx, conn, st, ledgerID, db := pb.ctx, pb.conn, pb.st, pb.st.ledgerID, pb.db
	if len(st.rows.txID) == 0 && len(st.rows.ikKey) == 0 && len(st.ckpt.id) == 0 {
		_, err := conn.Exec(ctx, "COMMIT") // nothing to write; releases the locks
		return err
	}
	// Large batches insert their rows with COPY: PostgreSQL then writes
	// them with multi-row heap inserts (one WAL record per page rather
	// than per row) and skips the executor's per-row work. Each COPY is a
	// round trip of its own, which small batches cannot afford.
	copied := len(st.rows.enTx) >= copyMinRows
	if copied {
		if err := st.copyRows(ctx, conn.Conn(), true); err != nil {
			if isKeyTakenErr(err) {
				return fmt.Errorf("%w: %v", errKeyTaken, err)
			}
			return fmt.Errorf("copy batch rows: %w", err)
		}
	}
	w := st.queueWrites(db.ttl(), copied)
	if err := conn.SendBatch(ctx, w).Close(); err != nil {
		if isKeyTakenErr(err) {
			return fmt.Errorf("%w: %v", errKeyTaken, err)
		}
		if pgCode(err) == "" {
			// The connection failed with COMMIT possibly on its way: the
			// outcome is unknown until someone looks.
			return &CommitUnknownError{LedgerID: ledgerID, FirstID: st.firstID, Err: err}
		}
		return fmt.Errorf("write batch: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]struct{}) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids) // bytewise, as COLLATE "C": one lock order for everyone
	return ids
}

// applyUnit applies one caller's unit in memory; an atomic unit that fails
// leaves no trace in the batch.
func (st *batchState) applyUnit(u *ledgerd.WriteUnit) {
	type undo struct {
		snap    ledgerd.Snapshot
		mark    rowsMark
		seq     int64
		keys    []string
		refs    []string
		targets map[string]ledgerd.Transaction
	}
	var un *undo
	if u.Atomic {
		ids := map[string]struct{}{}
		un = &undo{mark: st.rows.mark(), seq: st.seq, targets: map[string]ledgerd.Transaction{}}
		for _, it := range u.Items {
			for _, p := range it.Request.Postings {
				ids[p.Source], ids[p.Destination] = struct{}{}, struct{}{}
			}
			if it.Action != nil {
				if ts := st.targets[it.Action.Target]; ts != nil {
					un.targets[it.Action.Target] = *ts.tx
					for _, p := range ts.tx.Postings {
						ids[p.Source], ids[p.Destination] = struct{}{}, struct{}{}
					}
				}
			}
		}
		un.snap = st.book.Snapshot(sortedKeys(ids))
	}
	failed := -1
	for i, it := range u.Items {
		key := st.applyItem(it)
		if key != "" && un != nil {
			un.keys = append(un.keys, key)
		}
		if it.Result != nil && it.Result.Reference != "" && !it.Replayed && un != nil {
			un.refs = append(un.refs, it.Result.Reference)
		}
		if u.Atomic && it.Err != nil {
			failed = i
			break
		}
	}
	if failed < 0 {
		return
	}
	// Undo the unit: balances, rows, sequence numbers, targets, and what
	// the rest of the batch would otherwise see of it.
	st.book.Restore(un.snap)
	st.rows.truncate(un.mark)
	st.seq = un.seq
	for _, k := range un.keys {
		delete(st.idem, k)
	}
	for _, r := range un.refs {
		delete(st.refTaken, r)
	}
	for id, t := range un.targets {
		*st.targets[id].tx = t
	}
	if len(st.rows.txID) == 0 {
		st.firstID = pgtype.UUID{}
	}
	u.FailedIndex = failed
	for i, it := range u.Items {
		if i != failed {
			it.Result, it.Replayed, it.Err = nil, false, nil
		}
	}
}

// applyItem decides one item in the order of SPEC §2: the target of an
// action must exist (404), then idempotency, then the business rules. It
// returns the idempotency key it recorded a new outcome for, if any.
func (st *batchState) applyItem(it *ledgerd.WriteItem) (recorded string) {
	it.Result, it.Err, it.Replayed = nil, nil, false
	var target *targetState
	if it.Action != nil {
		target = st.targets[it.Action.Target]
		if target == nil {
			if it.Action.Kind == ledgerd.ActionExpire {
				return ""
			}
			it.Err = ledgerd.Errorf(ledgerd.CodeNotFound, "no transaction %q", it.Action.Target)
			return ""
		}
	}
	key := it.IdempotencyKey
	if key != "" {
		if is := st.idem[key]; is != nil {
			if is.hash == nil || string(is.hash) != string(it.RequestHash) {
				it.Err = reusedKey()
			} else {
				it.Result, it.Err, it.Replayed = is.tx, is.err, true
			}
			return ""
		}
	}
	req := it.Request
	var berr *ledgerd.Error
	if req.Reference != "" {
		if other, ok := st.refTaken[req.Reference]; ok {
			berr = &ledgerd.Error{Code: ledgerd.CodeDuplicateReference,
				Detail: "reference " + req.Reference + " is already used", TransactionID: other}
		}
	}
	postings, status := req.Postings, ledgerd.StatusPosted
	var plan *ledgerd.Plan
	if berr == nil {
		if it.Action != nil {
			plan, berr = ledgerd.PlanAction(it.Action, target.tx, st.at)
			if berr == ledgerd.ErrNothingToDo {
				return ""
			}
			if berr == nil {
				postings, status = plan.Postings, plan.Status
				st.legs, berr = st.book.ApplyMoves(plan.Moves, plan.CheckMin, st.legs[:0])
			}
		} else {
			if req.Pending {
				status = ledgerd.StatusPending
			}
			st.legs, berr = st.book.Apply(req.Postings, req.Pending, st.legs[:0])
		}
	}
	if berr != nil {
		it.Err = berr
		if key != "" && berr.Code.Stored() {
			st.recordRejection(key, it.RequestHash, berr)
			return key
		}
		return ""
	}

	st.seq++
	id := newTxID(st.at)
	if !st.firstID.Valid {
		st.firstID = id
	}
	t := &ledgerd.Transaction{ID: uuidString(id), Sequence: st.seq, Status: status,
		Postings: postings, Metadata: req.Metadata, Reference: req.Reference, CreatedAt: st.at}
	if it.Action == nil && req.Pending && req.PendingTimeout > 0 {
		e := st.at.Add(time.Duration(req.PendingTimeout) * time.Second)
		t.ExpiresAt = &e
	}
	if target != nil {
		switch it.Action.Kind {
		case ledgerd.ActionReverse:
			t.Reverses = target.tx.ID
			target.tx.ReversedBy = t.ID
		default:
			t.PendingID = target.tx.ID
			target.tx.Status = plan.TargetStatus
			target.tx.ResolvedBy = t.ID
		}
		target.changed = true
	}
	if it.Action == nil && req.EncodedPostings != nil {
		t.RawPostings, t.RawMetadata = req.EncodedPostings, req.EncodedMetadata
	} else {
		t.RawPostings = ledgerd.AppendPostingsJSON(nil, postings)
		t.RawMetadata = ledgerd.AppendMetadataJSON(nil, req.Metadata)
	}
	st.rows.addTx(id, t, st.legs)
	if req.Reference != "" {
		st.rows.refRef, st.rows.refTx = append(st.rows.refRef, req.Reference), append(st.rows.refTx, id)
		st.refTaken[req.Reference] = t.ID
	}
	it.Result = t
	if key != "" {
		r := &st.rows
		r.ikKey, r.ikHash, r.ikStatus = append(r.ikKey, key), append(r.ikHash, it.RequestHash), append(r.ikStatus, 201)
		r.ikTx, r.ikProblem = append(r.ikTx, id), append(r.ikProblem, nil)
		st.idem[key] = &idemState{hash: it.RequestHash, tx: t}
		return key
	}
	return ""
}

func (st *batchState) recordRejection(key string, hash []byte, e *ledgerd.Error) {
	p, _ := json.Marshal(storedProblem{Code: e.Code, Detail: e.Detail, TransactionID: e.TransactionID})
	ps := string(p)
	status := int16(422)
	if e.Code == ledgerd.CodeDuplicateReference || e.Code == ledgerd.CodeInvalidState {
		status = 409
	}
	r := &st.rows
	r.ikKey, r.ikHash, r.ikStatus = append(r.ikKey, key), append(r.ikHash, hash), append(r.ikStatus, status)
	r.ikTx, r.ikProblem = append(r.ikTx, pgtype.UUID{}), append(r.ikProblem, &ps)
	st.idem[key] = &idemState{hash: hash, err: e}
}

func (r *batchRows) addTx(id pgtype.UUID, t *ledgerd.Transaction, legs []ledgerd.Leg) {
	r.txID, r.txSeq, r.txStatus = append(r.txID, id), append(r.txSeq, t.Sequence), append(r.txStatus, string(t.Status))
	r.txPostings, r.txMetadata = append(r.txPostings, string(t.RawPostings)), append(r.txMetadata, string(t.RawMetadata))
	r.txExpires = append(r.txExpires, t.ExpiresAt)
	var ref *string
	if t.Reference != "" {
		ref = &t.Reference
	}
	r.txRef = append(r.txRef, ref)
	r.txPendingID, r.txReverses = append(r.txPendingID, parseID(t.PendingID)), append(r.txReverses, parseID(t.Reverses))
	for _, l := range legs {
		r.enTx, r.enAccount, r.enSeq = append(r.enTx, id), append(r.enAccount, l.Account), append(r.enSeq, t.Sequence)
		r.enIndex, r.enAmount, r.enPending = append(r.enIndex, int16(l.PostingIndex)), append(r.enAmount, l.Amount), append(r.enPending, l.Pending)
		r.enAfter, r.enVersion = append(r.enAfter, l.PostedAfter), append(r.enVersion, l.Version)
		r.enPD, r.enPC = append(r.enPD, l.PendingDebitsAfter), append(r.enPC, l.PendingCreditsAfter)
	}
}

func parseID(s string) pgtype.UUID {
	if s == "" {
		return pgtype.UUID{}
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: u, Valid: true}
}

// queueWrites builds the second pipeline: every write as one set-based
// statement, then COMMIT.
func (st *batchState) queueWrites(ttl time.Duration, copied bool) *pgx.Batch {
	w := &pgx.Batch{}
	if len(st.rows.txID) > 0 {
		if !copied {
			st.queueInserts(w)
		}
		st.queueLedgerUpdate(w)
	}
	// Also in a batch of rejections only: the checkpoint rows planned for
	// it have left the round.
	st.queueAccountUpdate(w)
	st.queueTargetUpdate(w)
	if !copied {
		st.queueRefInsert(w)
	}
	if len(st.expiredKeys) > 0 {
		w.Queue(`DELETE FROM idempotency_keys k USING unnest($1::bigint[], $2::text[]) AS u(ledger_id, key)
			WHERE k.ledger_id = u.ledger_id AND k.key = u.key AND k.expires_at <= clock_timestamp()`,
			repeat(st.ledgerID, len(st.expiredKeys)), st.expiredKeys)
	}
	st.queueKeyInsert(w, ttl)
	w.Queue("COMMIT")
	return w
}

// queueLedgerUpdate moves the ledger row on and records the commit.
func (st *batchState) queueLedgerUpdate(w *pgx.Batch) {
	w.Queue(`UPDATE ledgers SET last_sequence = $2, last_created_at = $3 WHERE id = $1`, st.ledgerID, st.seq, st.at)
	// Every transaction of the batch has created_at = at: one row maps
	// that time to the batch's sequence range (see ledger_commits).
	w.Queue(`INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at) VALUES ($1, $2, $3, $4)`,
		st.ledgerID, st.firstSeq, st.seq, st.at)
}

// queueTargetUpdate writes the new status and links of the existing
// transactions the batch's actions changed.
func (st *batchState) queueTargetUpdate(w *pgx.Batch) {
	var tID, tResolved, tReversed []pgtype.UUID
	var tStatus []string
	for _, ts := range st.targets {
		if ts.changed {
			tID = append(tID, parseID(ts.tx.ID))
			tStatus = append(tStatus, string(ts.tx.Status))
			tResolved, tReversed = append(tResolved, parseID(ts.tx.ResolvedBy)), append(tReversed, parseID(ts.tx.ReversedBy))
		}
	}
	if len(tID) > 0 {
		w.Queue(`UPDATE transactions t SET status = u.status, resolved_by = u.resolved_by, reversed_by = u.reversed_by
			FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[]) AS u(id, status, resolved_by, reversed_by)
			WHERE t.id = u.id AND t.ledger_id = $5`, tID, tStatus, tResolved, tReversed, st.ledgerID)
	}
}

// queueRefInsert inserts the batch's references (small batches; large
// ones COPY them).
func (st *batchState) queueRefInsert(w *pgx.Batch) {
	rows := &st.rows
	if len(rows.refRef) > 0 {
		w.Queue(`INSERT INTO transaction_references (ledger_id, reference, transaction_id)
			SELECT $1, u.ref, u.tx FROM unnest($2::text[], $3::uuid[]) AS u(ref, tx)`, st.ledgerID, rows.refRef, rows.refTx)
	}
}

// queueKeyInsert stores the batch's idempotency outcomes.
func (st *batchState) queueKeyInsert(w *pgx.Batch, ttl time.Duration) {
	rows, at := &st.rows, st.at
	if len(rows.ikKey) == 0 {
		return
	}
	rows.sortKeys()
	// A plain INSERT: under the ordering lock no other batch can hold
	// these keys. Only an account creation (outside that lock) could
	// have taken one meanwhile; the unique violation then rolls the
	// batch back, and the item-by-item retry answers that item
	// idempotency_key_reused.
	w.Queue(`INSERT INTO idempotency_keys (ledger_id, key, request_hash, status, transaction_id, problem, created_at, expires_at)
		SELECT $1, u.key, u.hash, u.status, u.tx, u.problem::json, $2, $3
		FROM unnest($4::text[], $5::bytea[], $6::smallint[], $7::uuid[], $8::text[]) AS u(key, hash, status, tx, problem)`,
		st.ledgerID, at, at.Add(ttl), rows.ikKey, rows.ikHash, rows.ikStatus, rows.ikTx, rows.ikProblem)
}

// queueInserts queues the row inserts of a small batch.
func (st *batchState) queueInserts(w *pgx.Batch) {
	rows, ledgerID, at := &st.rows, st.ledgerID, st.at
	w.Queue(`INSERT INTO transactions (id, ledger_id, sequence, status, postings, metadata, reference, created_at, expires_at, pending_id, reverses)
		SELECT u.id, $1, u.seq, u.status, u.postings::json, u.metadata::json, u.reference, $2, u.expires_at, u.pending_id, u.reverses
		FROM unnest($3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::uuid[], $11::uuid[])
			AS u(id, seq, status, postings, metadata, reference, expires_at, pending_id, reverses)`,
		ledgerID, at, rows.txID, rows.txSeq, rows.txStatus, rows.txPostings, rows.txMetadata, rows.txRef, rows.txExpires,
		rows.txPendingID, rows.txReverses)
	w.Queue(`INSERT INTO entries (transaction_id, ledger_id, account_id, sequence, posting_index, amount, pending, posted_after,
			pending_debits_after, pending_credits_after, version, created_at)
		SELECT u.tx, $1, u.account, u.seq, u.idx, u.amount, u.pending, u.after, nullif(u.pd, 0), nullif(u.pc, 0), u.version, $2
		FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::smallint[], $7::bigint[], $8::bool[], $9::bigint[], $10::bigint[],
			$11::bigint[], $12::bigint[])
			AS u(tx, account, seq, idx, amount, pending, after, version, pd, pc)`,
		ledgerID, at, rows.enTx, rows.enAccount, rows.enSeq, rows.enIndex, rows.enAmount, rows.enPending, rows.enAfter, rows.enVersion,
		rows.enPD, rows.enPC)
}

// copyMinRows is the number of entry rows from which a batch's inserts use
// COPY (measured: below it the extra round trips cost more than they save).
const copyMinRows = 256

// copyRows writes the batch's new transactions, entries and references
// with COPY, before the pipeline that updates balances, stores the
// idempotency outcomes (COPY measured slower there: 4.0 against 3.2 ms for
// 1,000 keys) and commits. The rows are rendered by copyBuf.
func (st *batchState) copyRows(ctx context.Context, conn *pgx.Conn, refs bool) error {
	rows, ledgerID, at := &st.rows, st.ledgerID, st.at
	pc := conn.PgConn()
	if len(rows.txID) > 0 {
		c := newCopyBuf(len(rows.txID) * 220)
		for i := range rows.txID {
			c.row(11)
			c.uuid(rows.txID[i])
			c.int8(ledgerID)
			c.int8(rows.txSeq[i])
			c.text(rows.txStatus[i])
			c.text(rows.txPostings[i])
			c.text(rows.txMetadata[i])
			c.textPtr(rows.txRef[i])
			c.timestamptz(at)
			c.timestamptzPtr(rows.txExpires[i])
			c.uuid(rows.txPendingID[i])
			c.uuid(rows.txReverses[i])
		}
		if _, err := pc.CopyFrom(ctx, bytes.NewReader(c.bytes()), `COPY transactions (id, ledger_id, sequence, status, postings,
			metadata, reference, created_at, expires_at, pending_id, reverses) FROM STDIN (FORMAT binary)`); err != nil {
			return err
		}
		c = newCopyBuf(len(rows.enTx) * 134)
		for _, i := range sortedPerm(len(rows.enTx), func(i, j int) int {
			return cmp.Or(strings.Compare(rows.enAccount[i], rows.enAccount[j]), cmp.Compare(rows.enSeq[i], rows.enSeq[j]),
				cmp.Compare(rows.enIndex[i], rows.enIndex[j]))
		}) {
			c.row(12)
			c.uuid(rows.enTx[i])
			c.int8(ledgerID)
			c.text(rows.enAccount[i])
			c.int8(rows.enSeq[i])
			c.int2(rows.enIndex[i])
			c.int8(rows.enAmount[i])
			c.boolean(rows.enPending[i])
			c.int8(rows.enAfter[i])
			c.int8OrNull(rows.enPD[i])
			c.int8OrNull(rows.enPC[i])
			c.int8(rows.enVersion[i])
			c.timestamptz(at)
		}
		if _, err := pc.CopyFrom(ctx, bytes.NewReader(c.bytes()), `COPY entries (transaction_id, ledger_id, account_id, sequence,
			posting_index, amount, pending, posted_after, pending_debits_after, pending_credits_after, version, created_at)
			FROM STDIN (FORMAT binary)`); err != nil {
			return err
		}
	}
	if refs {
		return st.copyRefs(ctx, pc)
	}
	return nil
}

// copyRefs writes the batch's references with COPY, in index order.
func (st *batchState) copyRefs(ctx context.Context, pc *pgconn.PgConn) error {
	rows, ledgerID := &st.rows, st.ledgerID
	if len(rows.refRef) > 0 {
		c := newCopyBuf(len(rows.refRef) * 64)
		for _, i := range sortedPerm(len(rows.refRef), func(i, j int) int { return strings.Compare(rows.refRef[i], rows.refRef[j]) }) {
			c.row(3)
			c.int8(ledgerID)
			c.text(rows.refRef[i])
			c.uuid(rows.refTx[i])
		}
		if _, err := pc.CopyFrom(ctx, bytes.NewReader(c.bytes()),
			`COPY transaction_references (ledger_id, reference, transaction_id) FROM STDIN (FORMAT binary)`); err != nil {
			return err
		}
	}
	return nil
}

// sortedPerm returns the indexes 0..n-1 ordered by cmp. Rows are written in
// the order of the index they go into: measured on the batch scenario, a
// B-tree probe or insert that follows its neighbour touches pages that
// are already in the CPU's caches and TLB, where request order (random
// keys, random accounts) makes every one of them a cold walk from the root.
func sortedPerm(n int, cmp func(i, j int) int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	slices.SortFunc(p, cmp)
	return p
}

// sortKeys puts the idempotency outcomes in key order.
func (r *batchRows) sortKeys() {
	p := sortedPerm(len(r.ikKey), func(i, j int) int { return strings.Compare(r.ikKey[i], r.ikKey[j]) })
	key, hash, status := make([]string, len(p)), make([][]byte, len(p)), make([]int16, len(p))
	tx, problem := make([]pgtype.UUID, len(p)), make([]*string, len(p))
	for to, from := range p {
		key[to], hash[to], status[to], tx[to], problem[to] = r.ikKey[from], r.ikHash[from], r.ikStatus[from], r.ikTx[from], r.ikProblem[from]
	}
	r.ikKey, r.ikHash, r.ikStatus, r.ikTx, r.ikProblem = key, hash, status, tx, problem
}

func isKeyTakenErr(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "idempotency_keys_pkey"
}

var errKeyTaken = errors.New("an idempotency key was taken outside the ordering lock")

// IsKeyTaken reports whether err is the batch rollback caused by an
// idempotency key taken outside the ordering lock.
func IsKeyTaken(err error) bool { return errors.Is(err, errKeyTaken) }

// InsertDeadLetter keeps an item that failed on its own, for diagnosis.
func (db *DB) InsertDeadLetter(ctx context.Context, ledgerID int64, key string, request []byte, reason string) error {
	var k *string
	if key != "" {
		k = &key
	}
	_, err := db.exec(ctx, `INSERT INTO dead_letters (ledger_id, idempotency_key, request, reason) VALUES ($1, $2, $3::json, $4)`,
		ledgerID, k, string(request), reason)
	return err
}

// repeat returns n copies of id. The batch queries join unnest(ledger_ids,
// keys) to the table instead of filtering "ledger_id = $1 AND key =
// ANY($2)": with a constant ledger id the planner trusts its statistics for
// that ledger, which for a ledger younger than the last ANALYZE say "one
// row", and it then scans the whole ledger and filters. As a join clause
// the ledger id has no such estimate and every lookup is a unique index
// probe. (Seen in a profile: one backend at 90 % CPU, throughput decaying
// as the ledger grew.)
func repeat(id int64, n int) []int64 {
	r := make([]int64, n)
	for i := range r {
		r[i] = id
	}
	return r
}
