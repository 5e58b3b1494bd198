package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// The audit log (docs/audit.md). Every insert runs while its transaction
// holds the ledger's ordering lock (see migration 00008).

// InsertAuditSQL writes one entry; the caller holds the ledger's lock.
const InsertAuditSQL = `INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target)
	VALUES ($1, clock_timestamp(), $2, $3, $4, $5, $6)`

// InsertAuditBatchSQL writes a batch's entries in its commit pipeline.
const InsertAuditBatchSQL = `INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target)
	SELECT $1, $2, u.status, u.actor, u.request_id, u.action, u.target
	FROM unnest($3::smallint[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
		AS u(status, actor, request_id, action, target, ord) ORDER BY u.ord`

// auditRows is a batch's audit entries, one per request that changed state.
type auditRows struct {
	status                           []int16
	actor, requestID, action, target []string
}

func (r *auditRows) reset() {
	r.status, r.actor, r.requestID, r.action, r.target = r.status[:0], r.actor[:0], r.requestID[:0], r.action[:0], r.target[:0]
}

// fill lays out the entries of the units that changed state.
func (r *auditRows) fill(units []*ledgerd.WriteUnit) {
	r.reset()
	for _, u := range units {
		a := u.Audit
		if a == nil {
			continue
		}
		var created *ledgerd.Transaction
		changed := false
		for _, it := range u.Items {
			if it.Result != nil && !it.Replayed {
				changed = true
				if created == nil {
					created = it.Result
				}
			}
		}
		if !changed {
			continue
		}
		target := a.Target
		if a.Created {
			target = a.TargetOf(created.ID)
		}
		r.status = append(r.status, int16(a.Status))
		r.actor, r.requestID = append(r.actor, a.Actor), append(r.requestID, a.RequestID)
		r.action, r.target = append(r.action, a.Action), append(r.target, target)
	}
}

// queueAuditInsert writes the batch's entries; the batch holds the lock.
func (batch *batchState) queueAuditInsert(w *pgx.Batch) {
	r := &batch.audit
	if len(r.status) > 0 {
		w.Queue(InsertAuditBatchSQL, batch.ledgerID, batch.state.At, r.status, r.actor, r.requestID, r.action, r.target)
	}
}

// queueAudit queues ctx's entry for a change that created (or changed)
// the resource id, in a pipeline that already holds the ledger's lock.
func queueAudit(ctx context.Context, b *pgx.Batch, ledgerID int64, id string) {
	a := ledgerd.AuditFrom(ctx)
	if a == nil {
		return
	}
	b.Queue(InsertAuditSQL, ledgerID, a.Status, a.Actor, a.RequestID, a.Action, a.TargetOf(id))
}

// writeAudit writes ctx's entry in tx, which holds the ledger's lock.
func writeAudit(ctx context.Context, tx pgx.Tx, ledgerID int64, id string) error {
	var b pgx.Batch
	queueAudit(ctx, &b, ledgerID, id)
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &b).Close()
}

// InsertAudit writes one entry on its own (a 403): it takes the ledger's
// lock for the position, briefly.
func (db *DB) InsertAudit(ctx context.Context, ledgerID int64, e *ledgerd.AuditEntry) error {
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockLedgerForEventsSQL, ledgerID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, InsertAuditSQL, ledgerID, e.Status, e.Actor, e.RequestID, e.Action, e.Target)
		return err
	})
}

// ListAudit lists a ledger's entries after a position, oldest first.
func (db *DB) ListAudit(ctx context.Context, ledgerID, after int64, limit int) ([]*ledgerd.AuditEntry, error) {
	rows, err := db.query(ctx, `SELECT `+auditCols+`
		FROM audit_log WHERE ledger_id = $1 AND position > $2 ORDER BY position LIMIT $3`, ledgerID, after, limit)
	if err != nil {
		return nil, err
	}
	entries, err := scanAudit(rows)
	if err != nil {
		return nil, err
	}
	return entries, attachHashes(ctx, db.query, ledgerID, entries)
}

// auditCols are an entry's columns, as scanAudit reads them; its hashes
// are in audit_hashes (attachHashes).
const auditCols = `position, at, status, actor, request_id, action, target`

func scanAudit(rows pgx.Rows) ([]*ledgerd.AuditEntry, error) {
	defer rows.Close()
	var out []*ledgerd.AuditEntry
	for rows.Next() {
		e := &ledgerd.AuditEntry{}
		var status int16
		if err := rows.Scan(&e.Position, &e.At, &status, &e.Actor, &e.RequestID, &e.Action, &e.Target); err != nil {
			return nil, err
		}
		e.Status = int(status)
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditEntryExists reports whether position is an entry of the ledger.
func (db *DB) AuditEntryExists(ctx context.Context, ledgerID, position int64) (bool, error) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM audit_log WHERE ledger_id = $1 AND position = $2`, ledgerID, position).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
