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
		w.Queue(`DELETE FROM idempotency_keys k USING unnest($1::bigint[], $2::text[]) AS u(ledger_id, key)
			WHERE k.ledger_id = u.ledger_id AND k.key = u.key AND k.expires_at <= clock_timestamp()`,
			repeat(batch.ledgerID, len(batch.expiredKeys)), batch.expiredKeys)
	}
	batch.queueKeyInsert(w, ttl)
	w.Queue("COMMIT")
	return w
}

// queueLedgerUpdate moves the ledger row on and records the commit.
func (batch *batchState) queueLedgerUpdate(w *pgx.Batch) {
	w.Queue(`UPDATE ledgers SET last_sequence = $2, last_created_at = $3 WHERE id = $1`, batch.ledgerID, batch.state.Sequence, batch.state.At)
	// Every transaction of the batch has created_at = at: one row maps
	// that time to the batch's sequence range (see ledger_commits).
	w.Queue(`INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at) VALUES ($1, $2, $3, $4)`,
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
		w.Queue(`UPDATE transactions t SET status = u.status, resolved_by = u.resolved_by, reversed_by = u.reversed_by
			FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[]) AS u(id, status, resolved_by, reversed_by)
			WHERE t.id = u.id AND t.ledger_id = $5`, tID, tStatus, tResolved, tReversed, batch.ledgerID)
	}
}

// queueRefInsert inserts the batch's references (small batches; large
// ones COPY them).
func (batch *batchState) queueRefInsert(w *pgx.Batch) {
	rows := &batch.rows
	if len(rows.refRef) > 0 {
		w.Queue(`INSERT INTO transaction_references (ledger_id, reference, transaction_id)
			SELECT $1, u.ref, u.tx FROM unnest($2::text[], $3::uuid[]) AS u(ref, tx)`, batch.ledgerID, rows.refRef, rows.refTx)
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
	w.Queue(`INSERT INTO idempotency_keys (ledger_id, key, request_hash, status, transaction_id, problem, created_at, expires_at)
		SELECT $1, u.key, u.hash, u.status, u.tx, u.problem::json, $2, $3
		FROM unnest($4::text[], $5::bytea[], $6::smallint[], $7::uuid[], $8::text[]) AS u(key, hash, status, tx, problem)`,
		batch.ledgerID, at, at.Add(ttl), rows.keyKey, rows.keyHash, rows.keyStatus, rows.keyTx, rows.keyProblem)
}

// queueInserts queues the row inserts of a small batch.
func (batch *batchState) queueInserts(w *pgx.Batch) {
	rows, ledgerID, at := &batch.rows, batch.ledgerID, batch.state.At
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
		ledgerID, at, rows.entryTx, rows.entryAccount, rows.entrySeq, rows.entryIndex, rows.entryAmount, rows.entryPending, rows.entryAfter, rows.entryVersion,
		rows.entryPendingDebits, rows.entryPendingCredits)
}
