package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// The fast path writes a batch in one round trip instead of two, for the
// common case of a ledger with a single writer: every account the batch
// touches is in the writer's AccountCache, no item resolves or reverses
// an existing transaction, and the batch's idempotency keys and
// references are assumed to be new. The batch is then applied in memory
// before the database is asked anything, and the writes, a guard that
// takes the ordering lock, and COMMIT travel in one pipeline.
//
// Nothing is trusted that is not checked inside that transaction:
//   - the guard, run under the ordering lock, fails the transaction unless
//     the ledger row still holds the (last_sequence, accounts_epoch) the
//     cache was taken at, so the cached balances and the sequence and time
//     the batch continues from are the committed ones; a batch prepared
//     on the outcome of one still committing also checks that that
//     batch's last transaction is stored (AheadCommittedSQL);
//   - a key or reference that exists after all violates its unique index
//     at insert (where the slow path would have probed for it first).
//
// Any failure rolls the whole transaction back, and the batch is written
// again on the slow path, which reads keys, references and accounts under
// the lock and answers replays, duplicates and stale balances from what it
// finds. The fast path then stays off for a few batches, so that a burst
// of retried keys does not pay for two attempts each, and a ledger that
// several nodes write in turn (where the guard keeps failing) seldom
// tries it.
//
// Measured on the single-transfer scenario (bench/RESULTS.md): the first
// round trip, its nine statements and the key and reference probes were
// about a quarter of each commit cycle.

// fastPathCooldown is how many batches take the slow path after a
// failure; consecutive failures double it up to maxFastPathCooldown.
const (
	fastPathCooldown    = 16
	maxFastPathCooldown = 1024
)

// GuardSQL takes the ordering lock and divides by zero — failing the
// transaction, and every statement queued after it — unless nobody else
// has written the ledger since the cache was taken. The lock is taken in
// the CTE, so the check sees the row as it is once locked.
const GuardSQL = `WITH l AS (SELECT last_sequence, accounts_epoch FROM ledgers WHERE id = $1 FOR UPDATE)
	SELECT 1 / (l.last_sequence = $2 AND l.accounts_epoch = $3)::int FROM l`

// AheadCommittedSQL fails the transaction unless the last transaction of
// the batch ahead ($1, at sequence $3) is committed. GuardSQL alone cannot
// tell that batch's commit from another node's: had the batch ahead
// failed and another node committed as many transactions meanwhile, the
// ledger row would hold the very last_sequence it would have left. It is
// a statement of its own, after GuardSQL, so that its snapshot is taken
// once the lock is held and sees every commit made before.
const AheadCommittedSQL = `SELECT 1 / (EXISTS (SELECT 1 FROM transactions WHERE id = $1 AND ledger_id = $2 AND sequence = $3))::int`

// batchSettingsSQL holds the batch transaction's planner settings (see
// prepareBatch for why), as one statement rather than five SET LOCALs; and
// synchronous_commit, which a connection through PgBouncer cannot ask for
// at start, so that no server default or session state left on a pooled
// server connection can weaken the commit of a transfer.
const batchSettingsSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('synchronous_commit', 'on', true)`

// errFastPathRetry means the fast path rolled back for a reason the slow
// path settles: the guard failed, or a key or reference already existed.
var errFastPathRetry = ledgerd.ErrFastPathRetry

// FastBatch is a batch applied in memory on its writer's cached state,
// ready to be written by Commit.
type FastBatch struct {
	db    *DB
	state *batchState
	epoch int64
	// ahead is the last transaction of the fast batch the cache held the
	// outcome of when this one was prepared (not valid after a slow one).
	ahead pgtype.UUID
}

// PrepareFast applies units on the cache's state and returns the batch to
// write, or nil when the batch must take the slow path (WriteBatch): it is
// not eligible, or it would write no transaction. The cache then already
// holds the batch's outcome, so that the next batch can be prepared while
// this one commits; if Commit fails the cache is invalidated.
func (db *DB) PrepareFast(ledgerID int64, units []*ledgerd.WriteUnit, cache *AccountCache) *FastBatch {
	if !cache.usable() || cache.fastOff > 0 { // fastOff is counted down by the slow path's Apply
		return nil
	}
	// One pass: every account from the cache (else the batch is not
	// eligible), no action, and the sizes of the batch's rows.
	nItems, nKeys := 0, 0
	for _, u := range units {
		nItems += len(u.Items)
	}
	book := ledgerd.NewBook(2 * nItems)
	for _, u := range units {
		for _, it := range u.Items {
			if it.Action != nil {
				return nil
			}
			if it.IdempotencyKey != "" {
				nKeys++
			}
			for _, p := range it.Request.Postings {
				for _, id := range [2]string{p.Source, p.Destination} {
					if book.Get(id) != nil {
						continue
					}
					a, ok := cache.accounts[id]
					if !ok {
						return nil
					}
					book.Put(id, &a)
				}
			}
		}
	}
	batch := newBatchState(ledgerID, book, nKeys)
	batch.state.Sequence = cache.seq
	// The ledger's time is max(previous, clock) as on the slow path; the
	// clock is this node's rather than the database's, read before the
	// lock: the guard proves that no commit came in between.
	batch.state.At = db.now(time.Now()).UTC().Truncate(time.Microsecond)
	if cache.lastAt.After(batch.state.At) {
		batch.state.At = cache.lastAt
	}
	if err := batch.decide(units, nItems, cache.lastAt, db.problemStatus); err != nil {
		// The slow path decides again on what it reads, and fails the
		// batch if the invariant is still broken there.
		return nil
	}
	if len(batch.rows.txID) == 0 {
		// Only rejections: they were judged on cached balances that no
		// write of this batch would vouch for.
		return nil
	}
	fast := &FastBatch{db: db, state: batch, epoch: cache.epoch, ahead: cache.lastFastTx}
	cache.remember(batch.state.Book, batch.state.Sequence, fast.epoch, batch.state.At)
	cache.lastFastTx = batch.rows.txID[len(batch.rows.txID)-1]
	batch.planCheckpoint(cache, db.balanceCheckpoint(), time.Now())
	return fast
}

// Commit writes the batch: BEGIN, the rows no other writer can conflict
// with (transactions and entries: no unique key another batch could
// hold), then — once after is closed — the guard under the ordering lock,
// the references and idempotency outcomes, the account and ledger updates,
// and COMMIT. Inserting before taking the lock lets a
// batch insert its rows while the batch ahead of it still holds the lock
// on another connection; after (nil: do not wait) is that batch's signal
// that it holds the lock, so that this batch's guard queues behind it
// rather than racing it. locked, when not nil, is called once the guard
// has passed: this batch then holds the lock. A batch given an after was
// prepared on the outcome of the batch ahead, which may yet fail: it then
// also checks that batch's last transaction is committed.
//
// It returns nil, an error for which IsFastPathRetry holds (rolled back:
// write the batch again with WriteBatch), a *CommitUnknownError, or an
// error for which IsUnavailable holds. After any error the caller must
// invalidate the cache (AccountCache.Invalidate).
func (f *FastBatch) Commit(ctx context.Context, after <-chan struct{}, locked func()) (err error) {
	db, batch := f.db, f.state
	// The cache is not touched here: Commit may run on another goroutine
	// while the writer prepares the next batch.
	defer func() {
		var cu *CommitUnknownError
		switch {
		case err == nil:
		case !IsUnavailable(err) && !errors.As(err, &cu):
			err = fmt.Errorf("%w: %v", errFastPathRetry, err)
		default:
			err = classify(err)
		}
	}()
	wait := func() error {
		if after == nil {
			return nil
		}
		select {
		case <-after:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	conn, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	p := &preparedBatch{db: db, ctx: ctx, conn: conn, state: batch}
	defer p.release()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(batchSettingsSQL)
	if len(batch.rows.entryTx) >= copyMinRows {
		// COPY cannot join a pipeline: BEGIN first, then the COPYs.
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if err := batch.copyRows(ctx, conn.Conn(), false); err != nil {
			return err
		}
		b = &pgx.Batch{}
	} else {
		batch.queueInserts(b)
	}
	if err := wait(); err != nil {
		return err
	}
	onLocked := func(pgconn.CommandTag) error {
		if locked != nil {
			locked()
		}
		return nil
	}
	guard := b.Queue(GuardSQL, batch.ledgerID, batch.firstSeq-1, f.epoch)
	if after != nil {
		if !f.ahead.Valid {
			// Prepared on a slow batch's outcome while a batch is in
			// the air: not something the writer does; be safe.
			return fmt.Errorf("fast batch prepared behind a batch it cannot name")
		}
		b.Queue(AheadCommittedSQL, f.ahead, batch.ledgerID, batch.firstSeq-1).Exec(onLocked)
	} else {
		guard.Exec(onLocked)
	}
	// References and idempotency keys only under the lock: a unique insert
	// that meets an uncommitted equal key waits for its transaction, and
	// if that transaction (another node's batch) holds the ordering lock
	// this one is queued on, the two deadlock. Seen: two nodes racing
	// duplicates of one key, 40P01 and a 503.
	batch.queueRefInsert(b)
	batch.queueKeyInsert(b, db.ttl())
	batch.queueAuditInsert(b)
	batch.queueTraceInsert(b)
	batch.queueAccountUpdate(b)
	batch.queueLedgerUpdate(b)
	b.Queue("COMMIT")
	db.queueCommitLSN(b)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if pgCode(err) == "" && !errors.Is(err, ErrUnavailable) {
			// COMMIT may have been on its way: as on the slow path.
			return &CommitUnknownError{LedgerID: batch.ledgerID, FirstID: batch.firstID, Err: err}
		}
		return err
	}
	return nil
}

// IsFastPathRetry reports whether a FastBatch's Commit rolled back for a
// reason the slow path settles.
func IsFastPathRetry(err error) bool { return errors.Is(err, errFastPathRetry) }
