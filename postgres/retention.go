package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// RetainedTable names a side table that retention trims by age
// (docs/data-lifecycle.md §Retention of the side tables). The names are
// the metrics' label values, so they stay few and fixed.
type RetainedTable string

// The tables trimmed by DeleteOld. The audit log has its own pass
// (TrimAudit), which keeps its hash chain verifiable.
const (
	RetainEvents           RetainedTable = "events"
	RetainDeadLetters      RetainedTable = "dead_letters"
	RetainFailedDeliveries RetainedTable = "webhook_deliveries_failed"
	RetainRisk             RetainedTable = "transaction_risk"
	RetainTraces           RetainedTable = "transaction_traces"
	RetainEmails           RetainedTable = "emails"
)

// RetainedTables lists them in the order a pass visits them.
var RetainedTables = []RetainedTable{RetainEvents, RetainDeadLetters, RetainFailedDeliveries, RetainRisk, RetainTraces, RetainEmails}

// retentionSQL deletes up to $2 rows older than $1 from each table. Every
// inner SELECT is bounded by LIMIT and finds its rows through an index on
// the time column (00015_retention.sql), so one statement's cost is
// bounded whatever the backlog.
var retentionSQL = map[RetainedTable]string{
	// A ledger's newest events row is kept whatever its age: a consumer
	// that is caught up holds its id as `after`, and a deleted id would
	// answer 422 where it must answer an empty page.
	RetainEvents: `DELETE FROM events WHERE ctid = ANY (ARRAY(
		SELECT e.ctid FROM events e WHERE e.created_at < $1 AND EXISTS (SELECT 1 FROM events n
			WHERE n.ledger_id = e.ledger_id AND (n.after_sequence, n.ordinal) > (e.after_sequence, e.ordinal))
		LIMIT $2))`,
	RetainDeadLetters: `DELETE FROM dead_letters WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM dead_letters WHERE created_at < $1 LIMIT $2))`,
	RetainFailedDeliveries: `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE status = 'failed' AND created_at < $1 LIMIT $2)`,
	RetainRisk: `DELETE FROM transaction_risk WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM transaction_risk WHERE scored_at < $1 LIMIT $2))`,
	RetainTraces: `DELETE FROM transaction_traces WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM transaction_traces WHERE created_at < $1 LIMIT $2))`,
	RetainEmails: `DELETE FROM emails WHERE id IN (
		SELECT id FROM emails WHERE status <> 'pending' AND created_at < $1 LIMIT $2)`,
}

// RetentionSQL is the statement DeleteOld runs for table (for EXPLAIN).
func RetentionSQL(table RetainedTable) string { return retentionSQL[table] }

// DeleteOld deletes up to limit rows of table older than before and
// returns how many it deleted; fewer than limit means it has caught up.
func (db *DB) DeleteOld(ctx context.Context, table RetainedTable, before time.Time, limit int) (int64, error) {
	return db.deleteBatch(ctx, retentionSQL, table, before, limit)
}

// deleteBatch runs the statement of table in statements with the cutoff
// and the limit.
func (db *DB) deleteBatch(ctx context.Context, statements map[RetainedTable]string, table RetainedTable, cutoff time.Time, limit int) (int64, error) {
	sql, ok := statements[table]
	if !ok {
		return 0, fmt.Errorf("no retention for table %q", table)
	}
	// The simple protocol sends the cutoff as a literal, so that every
	// run is planned for its own value: a cached generic plan would
	// estimate a third of the table older than any cutoff and could scan
	// it all each hour rather than the index's few block ranges.
	tag, err := db.exec(ctx, sql, pgx.QueryExecModeSimpleProtocol, cutoff, limit)
	return tag.RowsAffected(), err
}

// AuditTrimLedgersSQL lists the ledgers with chained entries past their
// checkpoint: the only ones a trim can shorten.
const AuditTrimLedgersSQL = `SELECT c.ledger_id FROM audit_chains c
	LEFT JOIN audit_checkpoints k ON k.ledger_id = c.ledger_id
	WHERE c.position > coalesce(k.position, 0)`

// AuditTrimPrefixSQL measures the prefix of ledger $1's chain (up to
// position $2) older than $3, among its $4 oldest entries: how many, and
// the position and time of the last.
const AuditTrimPrefixSQL = `SELECT count(*), coalesce(max(position), 0), coalesce(max(at), now()) FROM (
	SELECT position, at, bool_and(at < $3) OVER (ORDER BY position) AS old
	FROM (SELECT position, at FROM audit_log WHERE ledger_id = $1 AND position <= $2
		ORDER BY position LIMIT $4) p
) x WHERE old`

// AuditTrimDeleteSQL deletes the prefix AuditTrimPrefixSQL measured.
const AuditTrimDeleteSQL = `DELETE FROM audit_log WHERE ledger_id = $1 AND position <= $2`

// AuditTrimHashesSQL deletes the hash blocks wholly before the cut; one
// that straddles it stays for the entries it still holds.
const AuditTrimHashesSQL = `DELETE FROM audit_hashes WHERE ledger_id = $1 AND last_position <= $2`

// TrimAudit deletes, for every ledger, up to limit of its oldest audit
// entries that are chained and older than before, and returns how many it
// deleted. Only a prefix of the chain goes: in the same transaction the
// ledger's audit_checkpoints row takes the position and hash of the last
// entry deleted, which the first entry kept names as its prev_hash, so
// `ledgerd verify` starts from the checkpoint and still checks every
// entry kept (docs/audit.md §Retention). Unchained entries are never
// deleted: the chainer still needs them.
func (db *DB) TrimAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	rows, err := db.query(ctx, AuditTrimLedgersSQL)
	if err != nil {
		return 0, err
	}
	ledgers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	var total int64
	for _, id := range ledgers {
		n, err := db.trimAuditLedger(ctx, id, before, limit)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (db *DB) trimAuditLedger(ctx context.Context, ledgerID int64, before time.Time, limit int) (n int64, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The chain head row is locked first, as the chainer does, so that
		// a trim and a chaining of the same ledger never interleave; a
		// ledger being chained is trimmed on the next pass.
		var head int64
		err := tx.QueryRow(ctx, `SELECT position FROM audit_chains WHERE ledger_id = $1 FOR UPDATE SKIP LOCKED`, ledgerID).Scan(&head)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		// The oldest entries in position order, up to the chain head: the
		// prefix to delete ends before the first one too young. Reading
		// in key order (not filtering on at) bounds the scan by limit.
		var last int64
		var at time.Time
		err = tx.QueryRow(ctx, AuditTrimPrefixSQL, ledgerID, head, before, limit).Scan(&n, &last, &at)
		if err != nil || n == 0 {
			n = 0
			return err
		}
		// The last deleted entry's hash, from the chainer's block (the
		// entry is chained: it is at or before the head).
		lastEntry := []*ledgerd.AuditEntry{{Position: last}}
		if err := attachHashes(ctx, tx.Query, ledgerID, lastEntry); err != nil {
			return err
		}
		hash := lastEntry[0].Hash
		if hash == "" {
			return fmt.Errorf("audit entry %d of ledger %d is before the chain head but in no hash block", last, ledgerID)
		}
		if _, err := tx.Exec(ctx, AuditTrimDeleteSQL, ledgerID, last); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, AuditTrimHashesSQL, ledgerID, last); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_checkpoints (ledger_id, position, hash, at, deleted) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (ledger_id) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash, at = EXCLUDED.at,
				deleted = audit_checkpoints.deleted + EXCLUDED.deleted, updated_at = clock_timestamp()`, ledgerID, last, hash, at, n)
		return err
	})
	return n, err
}
