package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Rows as they are archived: every column of transactions and entries, so
// that a restore puts back exactly what left, plus one row per posting
// (derived from the transaction's postings) for per-asset checks and for
// analytics that read the files directly. The struct tags are Parquet
// column names (package archive writes them).

// ArchivedTx is a transactions row. Postings and metadata are the stored
// JSON text, verbatim.
type ArchivedTx struct {
	ID         string     `parquet:"id"`
	Sequence   int64      `parquet:"sequence"`
	Status     string     `parquet:"status"`
	Postings   string     `parquet:"postings"`
	Metadata   *string    `parquet:"metadata,optional"`
	Reference  *string    `parquet:"reference,optional"`
	CreatedAt  time.Time  `parquet:"created_at,timestamp(microsecond)"`
	ExpiresAt  *time.Time `parquet:"expires_at,optional,timestamp(microsecond)"`
	PendingID  *string    `parquet:"pending_id,optional"`
	ResolvedBy *string    `parquet:"resolved_by,optional"`
	Reverses   *string    `parquet:"reverses,optional"`
	ReversedBy *string    `parquet:"reversed_by,optional"`
}

// ArchivedEntry is an entries row.
type ArchivedEntry struct {
	TransactionID       string    `parquet:"transaction_id"`
	AccountID           string    `parquet:"account_id"`
	Sequence            int64     `parquet:"sequence"`
	PostingIndex        int32     `parquet:"posting_index"`
	Amount              int64     `parquet:"amount"`
	Pending             bool      `parquet:"pending"`
	PostedAfter         int64     `parquet:"posted_after"`
	PendingDebitsAfter  *int64    `parquet:"pending_debits_after,optional"`
	PendingCreditsAfter *int64    `parquet:"pending_credits_after,optional"`
	Version             int64     `parquet:"version"`
	CreatedAt           time.Time `parquet:"created_at,timestamp(microsecond)"`
}

// ArchivedPosting is one posting of a transaction.
type ArchivedPosting struct {
	TransactionID string `parquet:"transaction_id"`
	Sequence      int64  `parquet:"sequence"`
	Index         int32  `parquet:"index"`
	Source        string `parquet:"source"`
	Destination   string `parquet:"destination"`
	Amount        int64  `parquet:"amount"`
	Asset         string `parquet:"asset"`
}

// archivedColumns are the columns of transactions and entries that the
// archived rows hold, in table order. CheckArchiveColumns compares them
// with the tables: a column added by a later migration must be archived
// too, or a restore would bring its rows back without it.
var archivedColumns = map[string][]string{
	"transactions": {"id", "ledger_id", "sequence", "status", "postings", "metadata", "reference", "created_at", "expires_at",
		"pending_id", "resolved_by", "reverses", "reversed_by"},
	"entries": {"transaction_id", "ledger_id", "account_id", "sequence", "posting_index", "amount", "pending", "posted_after",
		"version", "created_at", "pending_debits_after", "pending_credits_after"},
}

// CheckArchiveColumns fails when transactions or entries have columns
// other than those archived (or not in the same order: a restore moves
// rows with SELECT *).
func (db *DB) CheckArchiveColumns(ctx context.Context) error {
	for table, want := range archivedColumns {
		rows, err := db.query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("archive: %s has columns %v, this ledgerd archives %v: upgrade ledgerd before archiving", table, got, want)
		}
	}
	return nil
}

// exportChunk is how many rows an export hands over at a time.
const exportChunk = 10000

func uuidPtr(u pgtype.UUID) *string {
	if !u.Valid {
		return nil
	}
	s := uuidString(u)
	return &s
}

// ExportTransactions streams a ledger's rows of a transactions table in
// sequence order, exportChunk at a time.
func (db *DB) ExportTransactions(ctx context.Context, table string, ledgerID int64, fn func([]ArchivedTx) error) error {
	rows, err := db.query(ctx, `SELECT id, sequence, status, postings::text, metadata::text, reference, created_at, expires_at,
		pending_id, resolved_by, reverses, reversed_by FROM `+pgx.Identifier{table}.Sanitize()+`
		WHERE ledger_id = $1 ORDER BY sequence`, ledgerID)
	if err != nil {
		return err
	}
	return inChunks(rows, fn, func(rows pgx.Rows) (ArchivedTx, error) {
		var t ArchivedTx
		var id, pending, resolved, reverses, reversed pgtype.UUID
		if err := rows.Scan(&id, &t.Sequence, &t.Status, &t.Postings, &t.Metadata, &t.Reference, &t.CreatedAt, &t.ExpiresAt,
			&pending, &resolved, &reverses, &reversed); err != nil {
			return t, err
		}
		t.ID, t.PendingID, t.ResolvedBy, t.Reverses, t.ReversedBy = uuidString(id), uuidPtr(pending), uuidPtr(resolved), uuidPtr(reverses), uuidPtr(reversed)
		t.CreatedAt = t.CreatedAt.UTC()
		if t.ExpiresAt != nil {
			e := t.ExpiresAt.UTC()
			t.ExpiresAt = &e
		}
		return t, nil
	})
}

// ExportEntries streams a ledger's rows of an entries table in
// (sequence, posting_index, account) order, exportChunk at a time.
func (db *DB) ExportEntries(ctx context.Context, table string, ledgerID int64, fn func([]ArchivedEntry) error) error {
	rows, err := db.query(ctx, `SELECT transaction_id, account_id, sequence, posting_index, amount, pending, posted_after,
		pending_debits_after, pending_credits_after, version, created_at FROM `+pgx.Identifier{table}.Sanitize()+`
		WHERE ledger_id = $1 ORDER BY sequence, posting_index, account_id`, ledgerID)
	if err != nil {
		return err
	}
	return inChunks(rows, fn, func(rows pgx.Rows) (ArchivedEntry, error) {
		var e ArchivedEntry
		var id pgtype.UUID
		var idx int16
		if err := rows.Scan(&id, &e.AccountID, &e.Sequence, &idx, &e.Amount, &e.Pending, &e.PostedAfter,
			&e.PendingDebitsAfter, &e.PendingCreditsAfter, &e.Version, &e.CreatedAt); err != nil {
			return e, err
		}
		e.TransactionID, e.PostingIndex, e.CreatedAt = uuidString(id), int32(idx), e.CreatedAt.UTC()
		return e, nil
	})
}

// inChunks hands rows to fn exportChunk at a time, each scanned by scan,
// and closes them.
func inChunks[T any](rows pgx.Rows, fn func([]T) error, scan func(pgx.Rows) (T, error)) error {
	defer rows.Close()
	buf := make([]T, 0, exportChunk)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		if buf = append(buf, v); len(buf) == exportChunk {
			if err := fn(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// MonthSums is what verification compares between a month's tables and
// its files: row counts, the sequence range, and sums per account (entry
// amounts) and per asset (posting amounts).
type MonthSums struct {
	Transactions, Entries, Postings int64
	FirstSeq, LastSeq               int64
	// DistinctSeq is how many distinct sequence numbers the transactions
	// hold: LastSeq-FirstSeq+1 when the range has no gap.
	DistinctSeq int64
	Accounts    map[string]Sum
	Assets      map[string]Sum
}

// Sum is a count of rows and the sum of their amounts.
type Sum struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// Sums computes a ledger's MonthSums over a month's tables (attached
// partitions, detached tables or a restore's staging tables).
func (db *DB) Sums(ctx context.Context, txTable, entriesTable string, ledgerID int64) (*MonthSums, error) {
	s := &MonthSums{Accounts: map[string]Sum{}, Assets: map[string]Sum{}}
	tx, en := pgx.Identifier{txTable}.Sanitize(), pgx.Identifier{entriesTable}.Sanitize()
	err := db.queryRow(ctx, `SELECT count(*), coalesce(min(sequence), 0), coalesce(max(sequence), 0), count(DISTINCT sequence)
		FROM `+tx+` WHERE ledger_id = $1`, ledgerID).Scan(&s.Transactions, &s.FirstSeq, &s.LastSeq, &s.DistinctSeq)
	if err != nil {
		return nil, fmt.Errorf("sums of %s: %w", txTable, err)
	}
	collect := func(into map[string]Sum, total *int64, sql string) error {
		rows, err := db.query(ctx, sql, ledgerID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var v Sum
			if err := rows.Scan(&k, &v.Count, &v.Amount); err != nil {
				return err
			}
			into[k] = v
			*total += v.Count
		}
		return rows.Err()
	}
	if err := collect(s.Accounts, &s.Entries, `SELECT account_id, count(*), sum(amount)::bigint FROM `+en+`
		WHERE ledger_id = $1 GROUP BY account_id`); err != nil {
		return nil, fmt.Errorf("sums of %s: %w", entriesTable, err)
	}
	if err := collect(s.Assets, &s.Postings, `SELECT p->>'asset', count(*), sum((p->>'amount')::bigint)::bigint
		FROM `+tx+` t CROSS JOIN LATERAL json_array_elements(t.postings) p WHERE t.ledger_id = $1 GROUP BY 1`); err != nil {
		return nil, fmt.Errorf("posting sums of %s: %w", txTable, err)
	}
	return s, nil
}
