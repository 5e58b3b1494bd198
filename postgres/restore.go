package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A restore loads a ledger's month from its files into staging tables,
// verifies them (Sums) like the archiver verifies a detached month, and
// only then moves the rows into the month's partitions in one
// transaction: a failed or interrupted restore leaves nothing half
// attached, and its rerun starts again from the files.

// StageTables are the staging tables of a ledger's month.
func StageTables(ledgerID int64, month time.Time) (transactions, entries string) {
	tx, en := MonthTables(month)
	return fmt.Sprintf("restore_%d_%s", ledgerID, tx), fmt.Sprintf("restore_%d_%s", ledgerID, en)
}

// CreateStage creates (empty) the staging tables of a ledger's month.
func (db *DB) CreateStage(ctx context.Context, ledgerID int64, month time.Time) error {
	tx, en := StageTables(ledgerID, month)
	for parent, t := range map[string]string{"transactions": tx, "entries": en} {
		id := pgx.Identifier{t}.Sanitize()
		if _, err := db.exec(ctx, `DROP TABLE IF EXISTS `+id); err != nil {
			return err
		}
		if _, err := db.exec(ctx, `CREATE TABLE `+id+` (LIKE `+parent+` INCLUDING DEFAULTS)`); err != nil {
			return fmt.Errorf("create %s: %w", t, err)
		}
	}
	return nil
}

// DropStage drops the staging tables of a ledger's month.
func (db *DB) DropStage(ctx context.Context, ledgerID int64, month time.Time) error {
	tx, en := StageTables(ledgerID, month)
	_, err := db.exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{tx}.Sanitize()+`, `+pgx.Identifier{en}.Sanitize())
	return err
}

func pgUUID(s *string) (pgtype.UUID, error) {
	if s == nil {
		return pgtype.UUID{}, nil
	}
	u, err := uuid.Parse(*s)
	if err != nil {
		return pgtype.UUID{}, fmt.Errorf("archived id %q: %w", *s, err)
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

// StageTransactions copies archived transactions into a staging table.
func (db *DB) StageTransactions(ctx context.Context, table string, ledgerID int64, txs []ArchivedTx) error {
	rows := make([][]any, len(txs))
	for i, t := range txs {
		id, err := pgUUID(&t.ID)
		if err != nil {
			return err
		}
		var links [4]pgtype.UUID
		for j, s := range []*string{t.PendingID, t.ResolvedBy, t.Reverses, t.ReversedBy} {
			if links[j], err = pgUUID(s); err != nil {
				return err
			}
		}
		rows[i] = []any{id, ledgerID, t.Sequence, t.Status, t.Postings, t.Metadata, t.Reference, t.CreatedAt, t.ExpiresAt,
			links[0], links[1], links[2], links[3]}
	}
	return db.copyInto(ctx, table, []string{"id", "ledger_id", "sequence", "status", "postings", "metadata", "reference",
		"created_at", "expires_at", "pending_id", "resolved_by", "reverses", "reversed_by"}, rows)
}

// StageEntries copies archived entries into a staging table.
func (db *DB) StageEntries(ctx context.Context, table string, ledgerID int64, es []ArchivedEntry) error {
	rows := make([][]any, len(es))
	for i, e := range es {
		id, err := pgUUID(&e.TransactionID)
		if err != nil {
			return err
		}
		rows[i] = []any{id, ledgerID, e.AccountID, e.Sequence, int16(e.PostingIndex), e.Amount, e.Pending, e.PostedAfter,
			e.PendingDebitsAfter, e.PendingCreditsAfter, e.Version, e.CreatedAt}
	}
	return db.copyInto(ctx, table, []string{"transaction_id", "ledger_id", "account_id", "sequence", "posting_index", "amount",
		"pending", "posted_after", "pending_debits_after", "pending_credits_after", "version", "created_at"}, rows)
}

// copyInto runs COPY inside a transaction (it needs a describe round trip,
// which PgBouncer's transaction pooling only keeps within one).
func (db *DB) copyInto(ctx context.Context, table string, cols []string, rows [][]any) error {
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
}

// AttachStage moves a verified stage into the month's partitions and marks
// the ledger's month restored, in one transaction. It refuses when the
// ledger already has rows in the month (restored before).
func (db *DB) AttachStage(ctx context.Context, ledgerID int64, month time.Time) error {
	month = Month(month)
	if err := db.CreateMonthPartitions(ctx, month); err != nil {
		return err
	}
	stx, sen := StageTables(ledgerID, month)
	ptx, pen := MonthTables(month)
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{ptx}.Sanitize()+` WHERE ledger_id = $1`, ledgerID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("ledger %d already has %d transactions in %s: restored before", ledgerID, n, month.Format("2006-01"))
		}
		for _, q := range []string{
			`INSERT INTO ` + pgx.Identifier{ptx}.Sanitize() + ` SELECT * FROM ` + pgx.Identifier{stx}.Sanitize(),
			`INSERT INTO ` + pgx.Identifier{pen}.Sanitize() + ` SELECT * FROM ` + pgx.Identifier{sen}.Sanitize(),
			// Retention deleted the month's commits and, past their
			// retention, its references (retainarchived.go): the month
			// reads like any other again. A reference taken meanwhile
			// by a newer transaction stays with that one.
			`INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at)
				SELECT ledger_id, min(sequence), max(sequence), created_at FROM ` + pgx.Identifier{stx}.Sanitize() + `
				GROUP BY ledger_id, created_at ON CONFLICT DO NOTHING`,
			`INSERT INTO transaction_references (ledger_id, reference, transaction_id)
				SELECT ledger_id, reference, id FROM ` + pgx.Identifier{stx}.Sanitize() + ` WHERE reference IS NOT NULL
				ON CONFLICT DO NOTHING`,
			`UPDATE archives SET state = 'restored', updated_at = clock_timestamp() WHERE ledger_id = $1 AND month = $2`,
			`DROP TABLE ` + pgx.Identifier{stx}.Sanitize() + `, ` + pgx.Identifier{sen}.Sanitize(),
		} {
			var args []any
			if q[0] == 'U' {
				args = []any{ledgerID, month}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("attach restored %s: %w", month.Format("2006-01"), err)
			}
		}
		return nil
	})
}
