package postgres

import (
	"context"
	"time"
)

// Side rows of archived months (docs/data-lifecycle.md §Retention of the
// side tables). Rows keyed by a transaction or a sequence of a month that
// left the database serve nothing once the month is dropped: its commits'
// times are bounded by the archives' sequence ranges and read from the
// files (history.go), its risk scores and trace links belong to
// transactions that answer 410. Their references are the exception: they
// keep the transactions' references taken, for LEDGERD_RETAIN_REFERENCES.

// The tables DeleteArchived trims; RetainRisk and RetainTraces also age
// by time (DeleteOld).
const (
	RetainCommits    RetainedTable = "ledger_commits"
	RetainReferences RetainedTable = "transaction_references"
)

// ArchivedTables lists them in the order a pass visits them.
var ArchivedTables = []RetainedTable{RetainCommits, RetainRisk, RetainTraces, RetainReferences}

// monthUUID is the SQL for the smallest UUIDv7 of the month m (a date
// column), as monthBound computes it.
func monthUUID(m string) string {
	return `(lpad(to_hex((extract(epoch FROM ` + m + `::timestamp) * 1000)::bigint), 12, '0') || '00000000000000000000')::uuid`
}

// droppedMonths selects each ledger's months that are dropped (never a
// restored one, nor one on its way out) and ended before $1.
const droppedMonths = `SELECT ledger_id, month, first_sequence, last_sequence FROM archives
	WHERE state = 'dropped' AND (month + interval '1 month') AT TIME ZONE 'UTC' <= $1`

// archivedSQL deletes up to $2 rows of each table that belong to months
// droppedMonths selects. Each lateral probe is an index range scan of one
// ledger's month (the primary keys, and transaction_references_transaction
// of 00016), so a pass over months already cleared costs one probe per
// archived month.
var archivedSQL = map[RetainedTable]string{
	RetainCommits: `DELETE FROM ledger_commits WHERE (ledger_id, first_sequence) IN (
		SELECT c.ledger_id, c.first_sequence FROM (` + droppedMonths + `) a CROSS JOIN LATERAL (
			SELECT ledger_id, first_sequence FROM ledger_commits c WHERE c.ledger_id = a.ledger_id
				AND c.first_sequence BETWEEN a.first_sequence AND a.last_sequence LIMIT $2) c
		LIMIT $2)`,
	RetainRisk: `DELETE FROM transaction_risk WHERE (ledger_id, sequence) IN (
		SELECT k.ledger_id, k.sequence FROM (` + droppedMonths + `) a CROSS JOIN LATERAL (
			SELECT ledger_id, sequence FROM transaction_risk k WHERE k.ledger_id = a.ledger_id
				AND k.sequence BETWEEN a.first_sequence AND a.last_sequence LIMIT $2) k
		LIMIT $2)`,
	RetainReferences: `DELETE FROM transaction_references WHERE (ledger_id, reference) IN (
		SELECT r.ledger_id, r.reference FROM (` + droppedMonths + `) a CROSS JOIN LATERAL (
			SELECT ledger_id, reference FROM transaction_references r WHERE r.ledger_id = a.ledger_id
				AND r.transaction_id >= ` + monthUUID("a.month") + ` AND r.transaction_id < ` + monthUUID("(a.month + interval '1 month')") + `
			LIMIT $2) r
		LIMIT $2)`,
	// Trace links carry no ledger: a month's go once every ledger's rows
	// of it are dropped (none restored).
	RetainTraces: `DELETE FROM transaction_traces WHERE transaction_id IN (
		SELECT t.transaction_id FROM (SELECT DISTINCT month FROM (` + droppedMonths + `) d) a
		CROSS JOIN LATERAL (
			SELECT transaction_id FROM transaction_traces WHERE transaction_id >= ` + monthUUID("a.month") + `
				AND transaction_id < ` + monthUUID("(a.month + interval '1 month')") + ` LIMIT $2) t
		WHERE NOT EXISTS (SELECT 1 FROM archives o WHERE o.month = a.month AND o.state <> 'dropped')
		LIMIT $2)`,
}

// ArchivedSQL is the statement DeleteArchived runs for table (for EXPLAIN).
func ArchivedSQL(table RetainedTable) string { return archivedSQL[table] }

// DeleteArchived deletes up to limit rows of table that belong to months
// archived and dropped that ended before endedBefore, and returns how
// many it deleted; fewer than limit means it has caught up.
func (db *DB) DeleteArchived(ctx context.Context, table RetainedTable, endedBefore time.Time, limit int) (int64, error) {
	return db.deleteBatch(ctx, archivedSQL, table, endedBefore, limit)
}
