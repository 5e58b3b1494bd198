package postgres

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// queueWrites builds the second pipeline: every write as one set-based
// statement, then COMMIT.
func (batch *batchState) queueWrites(ttl time.Duration, copied bool) *pgx.Batch {
	w := &pgx.Batch{}
	if len(batch.rows.txID) > 0 {
		if !copied {
			batch.queueInserts(w)
		}
		batch.queueLedgerUpdate(w)
	}
	// Also in a batch of rejections only: the checkpoint rows planned for
	// it have left the round.
	batch.queueAccountUpdate(w)
	batch.queueTargetUpdate(w)
	if !copied {
		batch.queueRefInsert(w)
	}
	if len(batch.expiredKeys) > 0 {
		w.Queue(DeleteExpiredBatchKeysSQL,
			repeat(batch.ledgerID, len(batch.expiredKeys)), batch.expiredKeys)
	}
	batch.queueKeyInsert(w, ttl)
	batch.queueAuditInsert(w)
	batch.queueTraceInsert(w)
	w.Queue("COMMIT")
	return w
}

// queueLedgerUpdate moves the ledger row on and records the commit.
func (batch *batchState) queueLedgerUpdate(w *pgx.Batch) {
	w.Queue(UpdateLedgerSQL, batch.ledgerID, batch.state.Sequence, batch.state.At)
	// Every transaction of the batch has created_at = at: one row maps
	// that time to the batch's sequence range (see ledger_commits).
	w.Queue(InsertCommitSQL,
		batch.ledgerID, batch.firstSeq, batch.state.Sequence, batch.state.At)
}

// queueTargetUpdate writes the new status and links of the existing
// transactions the batch's actions changed.
func (batch *batchState) queueTargetUpdate(w *pgx.Batch) {
	var tID, tResolved, tReversed []pgtype.UUID
	var tStatus []string
	for _, target := range batch.state.Targets {
		if target.Changed {
			t := target.Tx
			tID = append(tID, parseID(t.ID))
			tStatus = append(tStatus, string(t.Status))
			tResolved, tReversed = append(tResolved, parseID(t.ResolvedBy)), append(tReversed, parseID(t.ReversedBy))
		}
	}
	if len(tID) > 0 {
		w.Queue(UpdateTargetsSQL, tID, tStatus, tResolved, tReversed, batch.ledgerID)
	}
}

// queueRefInsert inserts the batch's references (small batches; large
// ones COPY them).
func (batch *batchState) queueRefInsert(w *pgx.Batch) {
	rows := &batch.rows
	if len(rows.refRef) > 0 {
		w.Queue(InsertReferencesSQL, batch.ledgerID, rows.refRef, rows.refTx)
	}
}

// queueKeyInsert stores the batch's idempotency outcomes.
func (batch *batchState) queueKeyInsert(w *pgx.Batch, ttl time.Duration) {
	rows, at := &batch.rows, batch.state.At
	if len(rows.keyKey) == 0 {
		return
	}
	rows.sortKeys()
	// A plain INSERT: under the ordering lock no other batch can hold
	// these keys. Only an account creation (outside that lock) could
	// have taken one meanwhile; the unique violation then rolls the
	// batch back, and the item-by-item retry answers that item
	// idempotency_key_reused.
	w.Queue(InsertKeysSQL,
		batch.ledgerID, at, at.Add(ttl), rows.keyKey, rows.keyHash, rows.keyStatus, rows.keyTx, rows.keyProblem)
}

// queueInserts queues the row inserts of a small batch.
func (batch *batchState) queueInserts(w *pgx.Batch) {
	rows, ledgerID, at := &batch.rows, batch.ledgerID, batch.state.At
	w.Queue(InsertTransactionsSQL,
		ledgerID, at, rows.txID, rows.txSeq, rows.txStatus, rows.txPostings, rows.txMetadata, rows.txRef, rows.txExpires,
		rows.txPendingID, rows.txReverses)
	w.Queue(InsertEntriesSQL,
		ledgerID, at, rows.entryTx, rows.entryAccount, rows.entrySeq, rows.entryIndex, rows.entryAmount, rows.entryPending, rows.entryAfter, rows.entryVersion,
		rows.entryPendingDebits, rows.entryPendingCredits)
}
