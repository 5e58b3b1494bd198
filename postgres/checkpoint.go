package postgres

import (
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// Balance checkpoints. Every entry holds its account's balance after its
// transaction (posted_after, pending_debits_after, pending_credits_after,
// version), so the newest entry of an account is its balance, and the
// account row's balance columns are a checkpoint that may lag behind it.
// Reads take whichever of the two has the higher version (accountHead);
// the batch writer brings the rows it has moved up to date once per
// checkpoint interval instead of in every commit.
//
// Measured with pg_stat_statements (bench/RESULTS.md), updating the
// touched account rows was the costliest statement per row of a commit:
// 17 µs a row in the small commits of single transfers, 9 µs in batches.
// With 10,000 accounts moved by a few thousand transfers a second, most
// rows change many times per interval and are written once.
//
// A checkpoint is always safe to write, whenever and by whomever: it
// writes a committed state of the account, and only over an older one
// (version guard). Correctness never depends on it running: a row that
// stays behind (the writer crashed, or dropped its cache after a failed
// commit) is still read right, and is checkpointed again once a batch
// reads it.

// DefaultBalanceCheckpoint is the checkpoint interval when
// DB.BalanceCheckpoint is zero.
const DefaultBalanceCheckpoint = 10 * time.Second

// checkpointChunkMin is the fewest rows a commit checkpoints while a
// round is under way; a commit that touches many accounts checkpoints up
// to twice as many. Small, so that the commits of a round (and the
// requests waiting on them) are not held up by a large update: at 2,000
// transfers/s a round of 10,000 accounts spreads over 150 commits of a
// few milliseconds each, in well under a second.
const checkpointChunkMin = 64

func (db *DB) balanceCheckpoint() time.Duration {
	if db.BalanceCheckpoint == 0 {
		return DefaultBalanceCheckpoint
	}
	return db.BalanceCheckpoint
}

// newestEntrySQL is an account's newest entry: the last leg of its
// latest transaction. It is taken whatever its version, then compared
// with the row's: a version condition inside would walk the account's
// whole history when the row is current. Pending totals of 0 are stored
// as NULL (most entries have none; 16 bytes less a row).
//
// The transaction id (the partition key) is bounded on both sides, so
// that the executor prunes the probe to the months that can hold a newer
// entry than the row's (migration 00012): below by the row's
// entries_from, above by the month after the ledger's last commit (hl).
// With checkpoints every few seconds that is the current month alone,
// whatever the months kept online. Both bounds are month starts: within
// the partitions left every entry passes them, so the probe stops at the
// first one.
const newestEntrySQL = `SELECT e.posted_after, coalesce(e.pending_debits_after, 0) AS pending_debits_after,
	coalesce(e.pending_credits_after, 0) AS pending_credits_after, e.version FROM entries e
	WHERE e.ledger_id = a.ledger_id AND e.account_id = a.id
		AND e.transaction_id >= coalesce(a.entries_from, '00000000-0000-0000-0000-000000000000')
		AND e.transaction_id < txid_month(hl.last_created_at, 1)
	ORDER BY e.sequence DESC, e.posting_index DESC LIMIT 1`

// accountHead is the FROM clause of every read of account balances: rows
// of src (accounts, or a subquery of them, as a) with their newest entry
// (as e) when it is newer than the row's checkpoint. The ledger row (hl)
// gives the probe its upper bound; it is read inside the lateral join so
// that it comes after the account in every plan (joined beside it, the
// planner put it first and then looked accounts up by ledger_id alone).
func accountHead(src string) string {
	return src + ` LEFT JOIN LATERAL (SELECT x.* FROM ledgers hl CROSS JOIN LATERAL (` + newestEntrySQL + `) x
	WHERE hl.id = a.ledger_id) e ON e.version > a.version`
}

// headBalanceCols are the balance columns of accountHead: from the
// newest entry if it is newer, else from the row.
const headBalanceCols = `coalesce(e.posted_after, a.posted), coalesce(e.pending_debits_after, a.pending_debits),
	coalesce(e.pending_credits_after, a.pending_credits), coalesce(e.version, a.version)`

// accountCols is an account as the API shows it, read from accountHead.
const accountCols = `a.id, a.asset, a.min_balance, a.metadata, ` + headBalanceCols + `, a.created_at, a.status`

// checkpointRows is the account rows a commit writes.
type checkpointRows struct {
	id                       []string
	posted, pd, pc, versions []int64
}

func (r *checkpointRows) add(id string, a *ledgerd.BookAccount) {
	r.id, r.versions = append(r.id, id), append(r.versions, a.Version)
	r.posted, r.pd, r.pc = append(r.posted, a.Balance.Posted), append(r.pd, a.Balance.PendingDebits), append(r.pc, a.Balance.PendingCredits)
}

// planCheckpoint chooses the account rows this batch's commit writes, once
// the batch is applied and the cache remembers its outcome. It runs on the
// writer's goroutine, which owns the cache. Without a cache (nobody to
// remember what is behind) or with checkpoints off, the commit writes the
// rows it touched, as before checkpoints existed.
//
// Rows are taken from the cache, which may hold the outcome of a batch
// still committing ahead of this one: this one commits only if that one
// did (the fast path's guard, the slow path's order), so what it writes
// is committed with it or not at all.
func (batch *batchState) planCheckpoint(cache *AccountCache, every time.Duration, now time.Time) {
	var touched []string
	batch.state.Book.Accounts(func(id string, a *ledgerd.BookAccount) {
		if a.Touched {
			touched = append(touched, id)
		}
	})
	if cache == nil || every < 0 {
		slices.Sort(touched) // one lock order for every writer of account rows
		for _, id := range touched {
			batch.ckpt.add(id, batch.state.Book.Get(id))
		}
		return
	}
	if cache.dirty == nil {
		cache.dirty = map[string]struct{}{}
	}
	for _, id := range touched {
		cache.dirty[id] = struct{}{}
	}
	for _, id := range batch.behind {
		cache.dirty[id] = struct{}{}
	}
	if len(cache.round) == 0 {
		if now.Sub(cache.roundAt) < every || len(cache.dirty) == 0 {
			return
		}
		// A new round: what is behind now is written over the next commits.
		cache.round = make([]string, 0, len(cache.dirty))
		for id := range cache.dirty {
			cache.round = append(cache.round, id)
		}
		clear(cache.dirty)
		cache.roundAt = now
	}
	n := min(len(cache.round), max(checkpointChunkMin, 2*len(touched)))
	chunk := cache.round[len(cache.round)-n:]
	cache.round = cache.round[:len(cache.round)-n]
	slices.Sort(chunk)
	for _, id := range chunk {
		if a, ok := cache.accounts[id]; ok {
			batch.ckpt.add(id, &a)
		}
	}
}

// monthOf is the smallest transaction id of t's month (UTC): a
// checkpoint's entries_from.
func monthOf(t time.Time) pgtype.UUID {
	t = t.UTC()
	return pgtype.UUID{Bytes: monthBound(time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)), Valid: true}
}

// queueAccountUpdate writes the planned checkpoint rows, in id order, each
// only over an older state.
func (batch *batchState) queueAccountUpdate(w *pgx.Batch) {
	r := &batch.ckpt
	if len(r.id) == 0 {
		return
	}
	w.Queue(CheckpointAccountsSQL,
		repeat(batch.ledgerID, len(r.id)), r.id, r.posted, r.pd, r.pc, r.versions, monthOf(batch.state.At))
}
