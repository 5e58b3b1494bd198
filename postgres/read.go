package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// batchState is one batch: what it loaded under the ordering lock (the
// decision state), and what it will write.
type batchState struct {
	ledgerID int64
	state    ledgerd.State
	// expiredKeys are stored keys past their expiry, deleted before reuse.
	expiredKeys []string
	// firstSeq is the first sequence number this batch may assign.
	firstSeq int64
	rows     batchRows
	firstID  pgtype.UUID
	// ckpt is the account rows the commit writes (planCheckpoint);
	// behind, the accounts read whose row lags behind their entries.
	ckpt   checkpointRows
	behind []string
	audit  auditRows
	traces traceRows
}

func newBatchState(ledgerID int64, book *ledgerd.Book, keys int) *batchState {
	return &batchState{ledgerID: ledgerID, state: ledgerd.State{Book: book, Keys: make(map[string]*ledgerd.KeyOutcome, keys),
		References: map[string]string{}, Targets: map[string]*ledgerd.Target{}, NewID: newTxID}}
}

// decide judges the units on the loaded state and lays out the rows to
// write. lastAt is the ledger's last created_at. Its error wraps
// ledgerd.ErrInvariant: the decisions must not be written.
func (batch *batchState) decide(units []*ledgerd.WriteUnit, nItems int, lastAt time.Time, problemStatus func(ledgerd.Code) int) error {
	batch.firstSeq = batch.state.Sequence + 1
	d, _ := decisionsPool.Get().(*ledgerd.Decisions)
	d = ledgerd.Decide(&batch.state, units, nItems, d)
	defer func() {
		d.Reset()
		decisionsPool.Put(d)
	}()
	if err := ledgerd.CheckDecisions(d, batch.state.Book, batch.firstSeq-1, lastAt); err != nil {
		return err
	}
	// After decide, before write: what later stages derive from the
	// decisions (events per transaction, audit entries, fraud and monitor
	// inputs) is built here from d and written in the same transaction.
	batch.rows.fill(d, problemStatus)
	batch.audit.fill(units)
	batch.traces.fill(units)
	batch.firstID = pgtype.UUID{}
	if len(batch.rows.txID) > 0 {
		batch.firstID = batch.rows.txID[0]
	}
	return nil
}

// decisionsPool reuses the decisions' buffers from batch to batch: they
// live only until the rows are laid out, and a batch of 1,000 transfers
// would otherwise allocate ~300 kB of them.
var decisionsPool sync.Pool

// LoadAccountsSQL reads the accounts a batch touches. It takes no row
// locks: every writer of an account row (this batch writer, and PATCH of
// an account) holds the ledger's ordering lock while it writes, so the
// rows cannot change under the batch. A FOR UPDATE here would only add a
// WAL record per account per batch (measured with pg_stat_statements: the
// locking read was the costliest statement of a batch, ~18 µs a row).
//
// Balances come from the row or the account's newest entry (accountHead);
// the row's own version tells whether its checkpoint is behind.
var LoadAccountsSQL = `SELECT a.id, a.asset, a.min_balance, ` + headBalanceCols + `, a.version, a.status = 'frozen'
	FROM ` + accountHead(`unnest($1::bigint[], $2::text[]) AS u(ledger_id, id)
	JOIN accounts a ON a.ledger_id = u.ledger_id AND a.id = u.id`)

func (batch *batchState) queueLoadAccounts(b *pgx.Batch, ids []string) {
	b.Queue(LoadAccountsSQL, repeat(batch.ledgerID, len(ids)), ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var rowVersion int64
			a := &ledgerd.BookAccount{}
			if err := rows.Scan(&id, &a.Asset, &a.MinBalance, &a.Balance.Posted, &a.Balance.PendingDebits,
				&a.Balance.PendingCredits, &a.Version, &rowVersion, &a.Frozen); err != nil {
				return err
			}
			if rowVersion < a.Version {
				batch.behind = append(batch.behind, id)
			}
			batch.state.Book.Put(id, a)
		}
		return rows.Err()
	})
}

// queueLoadTargets reads the existing transactions the batch's actions
// name. No row locks: only batch writers change a transaction's status
// and links, and they hold the ledger's ordering lock.
func (batch *batchState) queueLoadTargets(b *pgx.Batch, ids []pgtype.UUID) {
	b.Queue(LoadTargetsSQL, ids, batch.ledgerID).
		Query(func(rows pgx.Rows) error {
			txs, err := scanTxRows(rows, len(ids))
			if err != nil {
				return err
			}
			for _, t := range txs {
				if t.Postings, err = ledgerd.ParsePostingsJSON(t.RawPostings); err != nil {
					return err
				}
				batch.state.Targets[t.ID] = &ledgerd.Target{Tx: t}
			}
			return nil
		})
}

// queueLoadKeys reads the stored outcomes of the batch's idempotency keys.
func (batch *batchState) queueLoadKeys(b *pgx.Batch, keys []string) {
	b.Queue(LoadKeysSQL, repeat(batch.ledgerID, len(keys)), keys).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				if err := batch.scanKey(rows); err != nil {
					return err
				}
			}
			return rows.Err()
		})
}

func (batch *batchState) scanKey(rows pgx.Rows) error {
	var key string
	var expired bool
	var k ledgerd.KeyOutcome
	var status int16
	var problem []byte
	var s txScan
	if err := rows.Scan(append([]any{&key, &expired, &k.Hash, &status, &problem}, s.dest()...)...); err != nil {
		return err
	}
	switch {
	case expired:
		// Kept past its time: the key is free again, and the old record
		// goes before the new one is stored.
		batch.expiredKeys = append(batch.expiredKeys, key)
		return nil
	case s.id.Valid:
		k.Tx = s.tx()
	case problem != nil:
		var p storedProblem
		if err := json.Unmarshal(problem, &p); err != nil {
			return fmt.Errorf("stored problem of key %q: %w", key, err)
		}
		k.Err = &ledgerd.Error{Code: p.Code, Detail: p.Detail, TransactionID: p.TransactionID}
	default:
		// A key that holds another kind of outcome (an account
		// creation): any transaction with it is a different request.
		k.Hash = nil
	}
	batch.state.Keys[key] = &k
	return nil
}

// queueLoadReferences reads which of the batch's references are taken.
func (batch *batchState) queueLoadReferences(b *pgx.Batch, refs []string) {
	b.Queue(LoadReferencesSQL, repeat(batch.ledgerID, len(refs)), refs).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var ref string
				var id pgtype.UUID
				if err := rows.Scan(&ref, &id); err != nil {
					return err
				}
				batch.state.References[ref] = uuidString(id)
			}
			return rows.Err()
		})
}

// batchInputs is what a batch's first round trip must read: its accounts
// (sorted), idempotency keys, references and action targets.
type batchInputs struct {
	accounts, keys, refs []string
	targets              []pgtype.UUID
	items                int
}

func inputsOf(units []*ledgerd.WriteUnit) batchInputs {
	accountSet := map[string]struct{}{}
	var in batchInputs
	for _, u := range units {
		in.items += len(u.Items)
		for _, it := range u.Items {
			for _, p := range it.Request.Postings {
				accountSet[p.Source] = struct{}{}
				accountSet[p.Destination] = struct{}{}
			}
			if it.IdempotencyKey != "" {
				in.keys = append(in.keys, it.IdempotencyKey)
			}
			if it.Request.Reference != "" {
				in.refs = append(in.refs, it.Request.Reference)
			}
			if it.Action != nil {
				if id, err := uuid.Parse(it.Action.Target); err == nil {
					in.targets = append(in.targets, pgtype.UUID{Bytes: id, Valid: true})
				}
			}
		}
	}
	in.accounts = sortedKeys(accountSet)
	// Probes and inserts go in index order: consecutive ones then share
	// B-tree pages instead of each landing on a cold one (see sortedPerm).
	slices.Sort(in.keys)
	slices.Sort(in.refs)
	return in
}

func sortedKeys(m map[string]struct{}) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids) // bytewise, as COLLATE "C": one lock order for everyone
	return ids
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
