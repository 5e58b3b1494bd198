package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledgerd/ledgerd"
)

// WriteBatch applies the units in one database transaction under the
// ledger's ordering lock (docs/architecture.md): lock the ledger row, read
// the touched accounts in id order, decide every item in request order in
// memory (ledgerd.Decide), write the accepted rows with set-based
// statements, update each touched account once, commit. Every item's
// outcome is set on the item.
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
// WriteBatch is the fast path when it applies (PrepareFast), else
// prepareBatch, readAndDecide and Commit in a row.
func (db *DB) WriteBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit, cache *AccountCache) (err error) {
	defer func() {
		if err != nil {
			cache.Invalidate()
			err = classify(err)
		}
	}()
	if fast := db.PrepareFast(ledgerID, units, cache); fast != nil {
		err := fast.Commit(ctx, nil, nil)
		if err == nil {
			cache.fastCommits++
			cache.FastCommitted()
			return nil
		}
		if !IsFastPathRetry(err) {
			return err // the deferred Invalidate runs
		}
		cache.fastRetries++
		cache.Invalidate()
	}
	p, err := db.prepareBatch(ctx, ledgerID, units, cache)
	if err != nil {
		return err
	}
	if err := p.readAndDecide(); err != nil {
		p.abort()
		return err
	}
	return p.commit()
}

// preparedBatch is a slow-path WriteBatch in its steps: prepareBatch
// sends the first pipeline (BEGIN, the ordering lock, the reads);
// readAndDecide reads the answers and decides every item in memory;
// commit writes and commits. abort gives up (before commit). Every
// preparedBatch ends with exactly one commit or abort, which releases its
// connection.
type preparedBatch struct {
	db         *DB
	ctx        context.Context
	units      []*ledgerd.WriteUnit
	cache      *AccountCache
	conn       *pgxpool.Conn
	results    pgx.BatchResults
	state      *batchState
	items      int
	cached     []string
	optimistic bool
	lastAt     time.Time
	clock      time.Time
	epoch      int64
	released   bool
}

// prepareBatch acquires a connection and sends the batch's first pipeline.
func (db *DB) prepareBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit, cache *AccountCache) (*preparedBatch, error) {
	in := inputsOf(units)
	conn, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	batch := newBatchState(ledgerID, ledgerd.NewBook(len(in.accounts)), len(in.keys))
	p := &preparedBatch{db: db, ctx: ctx, units: units, cache: cache, conn: conn, state: batch, items: in.items}
	// One round trip: the ordering lock first (statements of a pipeline run
	// in order), then everything the in-memory decision needs.
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
	b.Queue(LockLedgerSQL, ledgerID).
		QueryRow(func(r pgx.Row) error { return r.Scan(&batch.state.Sequence, &p.lastAt, &p.epoch) })
	if len(in.targets) > 0 {
		batch.queueLoadTargets(&b, in.targets)
	}
	// With a usable cache, read only the accounts it does not hold; the
	// others are taken from it once the lock shows nobody else wrote.
	accountIDs := in.accounts
	p.optimistic = cache.usable()
	if p.optimistic {
		toLoad := accountIDs[:0:0]
		for _, id := range accountIDs {
			if _, ok := cache.accounts[id]; ok {
				p.cached = append(p.cached, id)
			} else {
				toLoad = append(toLoad, id)
			}
		}
		accountIDs = toLoad
	}
	if len(accountIDs) > 0 {
		batch.queueLoadAccounts(&b, accountIDs)
	}
	if len(in.keys) > 0 {
		batch.queueLoadKeys(&b, in.keys)
	}
	if len(in.refs) > 0 {
		batch.queueLoadReferences(&b, in.refs)
	}
	// The batch's time is read after the accounts, so it is never earlier
	// than the creation of an account the batch can see.
	b.Queue(`SELECT clock_timestamp()`).QueryRow(func(r pgx.Row) error { return r.Scan(&p.clock) })
	p.results = conn.SendBatch(ctx, &b)
	return p, nil
}

// release hands the connection back outside a transaction: the
// transaction is driven by hand rather than with pgx.Tx so that BEGIN
// travels in the first pipeline and COMMIT in the second (two round trips
// a batch), and whatever happened, nothing may leak into the next user.
func (p *preparedBatch) release() {
	if p.released {
		return
	}
	p.released = true
	if p.results != nil {
		_ = p.results.Close()
		p.results = nil
	}
	pc := p.conn.Conn().PgConn()
	if pc.TxStatus() != 'I' && !pc.IsClosed() {
		if _, err := p.conn.Exec(context.WithoutCancel(p.ctx), "ROLLBACK"); err != nil {
			pc.Close(context.WithoutCancel(p.ctx))
		}
	}
	p.conn.Release()
}

// abort rolls the batch back and releases its connection. Nothing of it
// is written; its items' outcomes are meaningless.
func (p *preparedBatch) abort() { p.release() }

// readAndDecide waits for the first pipeline's answers (the ordering lock
// is then held), loads what the cache could not vouch for, and decides
// every item in memory. The cache is updated as if the batch will commit:
// a failed Commit must be followed by invalidating the cache (WriteBatch
// and the writer do).
func (p *preparedBatch) readAndDecide() error {
	batch, cache := p.state, p.cache
	err := p.results.Close()
	p.results = nil
	if err != nil {
		return fmt.Errorf("load batch state: %w", err)
	}
	if err := p.takeCached(); err != nil {
		return err
	}
	if err := p.loadTargetAccounts(); err != nil {
		return err
	}
	batch.state.At = p.db.now(p.clock).UTC().Truncate(time.Microsecond)
	if p.lastAt.After(batch.state.At) {
		batch.state.At = p.lastAt.UTC()
	}
	if err := batch.decide(p.units, p.items, p.lastAt, p.db.problemStatus); err != nil {
		return err
	}
	cache.remember(batch.state.Book, batch.state.Sequence, p.epoch, batch.state.At)
	batch.planCheckpoint(cache, p.db.balanceCheckpoint(), time.Now())
	return nil
}

// takeCached puts the accounts taken from the cache in the book, or reads
// them when the lock shows that someone else wrote the ledger since.
func (p *preparedBatch) takeCached() error {
	cache, batch := p.cache, p.state
	if cache == nil {
		return nil
	}
	if cache.fastOff > 0 {
		cache.fastOff-- // one more batch on the slow path
	}
	fresh := cache.valid && cache.seq == batch.state.Sequence && cache.epoch == p.epoch
	cache.missed = !fresh
	if p.optimistic && !fresh && len(p.cached) > 0 {
		var b pgx.Batch
		batch.queueLoadAccounts(&b, p.cached)
		if err := p.conn.SendBatch(p.ctx, &b).Close(); err != nil {
			return fmt.Errorf("reload accounts: %w", err)
		}
	} else if p.optimistic {
		for _, id := range p.cached {
			a := cache.accounts[id]
			batch.state.Book.Put(id, &a)
		}
	}
	if !fresh {
		clear(cache.accounts)
		cache.valid = false
	}
	return nil
}

// loadTargetAccounts loads the accounts of the targets' postings, known
// only now, that are not loaded yet (one more round trip, only for such
// batches).
func (p *preparedBatch) loadTargetAccounts() error {
	batch := p.state
	if len(batch.state.Targets) == 0 {
		return nil
	}
	more := map[string]struct{}{}
	for _, t := range batch.state.Targets {
		for _, posting := range t.Tx.Postings {
			for _, id := range []string{posting.Source, posting.Destination} {
				if batch.state.Book.Get(id) != nil {
					continue
				}
				if a, ok := p.cache.lookup(id); ok {
					batch.state.Book.Put(id, &a)
					continue
				}
				more[id] = struct{}{}
			}
		}
	}
	if len(more) == 0 {
		return nil
	}
	var b pgx.Batch
	batch.queueLoadAccounts(&b, sortedKeys(more))
	if err := p.conn.SendBatch(p.ctx, &b).Close(); err != nil {
		return fmt.Errorf("load target accounts: %w", err)
	}
	return nil
}

// commit writes the batch's rows, updates the touched accounts and
// commits, then releases the connection. Its error means what
// WriteBatch's does; the caller must then invalidate the cache.
func (p *preparedBatch) commit() error {
	defer p.release()
	ctx, conn, batch, db := p.ctx, p.conn, p.state, p.db
	if len(batch.rows.txID) == 0 && len(batch.rows.keyKey) == 0 && len(batch.ckpt.id) == 0 {
		// Nothing to write; releases the locks. The position is read all
		// the same: a replay's answer carries a token that must cover the
		// original write, possibly another node's.
		var b pgx.Batch
		b.Queue("COMMIT")
		db.queueCommitLSN(&b)
		return conn.SendBatch(ctx, &b).Close()
	}
	// Large batches insert their rows with COPY: PostgreSQL then writes
	// them with multi-row heap inserts (one WAL record per page rather
	// than per row) and skips the executor's per-row work. Each COPY is a
	// round trip of its own, which small batches cannot afford.
	copied := len(batch.rows.entryTx) >= copyMinRows
	if copied {
		if err := batch.copyRows(ctx, conn.Conn(), true); err != nil {
			if isKeyTakenErr(err) {
				return fmt.Errorf("%w: %v", errKeyTaken, err)
			}
			return fmt.Errorf("copy batch rows: %w", err)
		}
	}
	w := batch.queueWrites(db.ttl(), copied)
	db.queueCommitLSN(w)
	if err := conn.SendBatch(ctx, w).Close(); err != nil {
		if isKeyTakenErr(err) {
			return fmt.Errorf("%w: %v", errKeyTaken, err)
		}
		if pgCode(err) == "" {
			// The connection failed with COMMIT possibly on its way: the
			// outcome is unknown until someone looks.
			return &CommitUnknownError{LedgerID: batch.ledgerID, FirstID: batch.firstID, Err: err}
		}
		return fmt.Errorf("write batch: %w", err)
	}
	return nil
}
