package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// CreateLedger creates a ledger; duplicate_ledger when the name is taken.
func (db *DB) CreateLedger(ctx context.Context, name string) (*ledgerd.Ledger, error) {
	l := &ledgerd.Ledger{Name: name}
	// The new row is the ledger's lock until this commits: its first
	// audit entry goes in with it.
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO ledgers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id, created_at, hot_months`, name).
			Scan(&l.ID, &l.CreatedAt, &l.HotMonths)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, l.ID, name)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledgerd.Errorf(ledgerd.CodeDuplicateLedger, "ledger %s already exists", name)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// LedgerByNameSQL reads a ledger by its name.
const LedgerByNameSQL = `SELECT id, name, created_at, last_sequence, hot_months FROM ledgers WHERE name = $1`

// LedgerByName returns a ledger, or nil when there is none.
func (db *DB) LedgerByName(ctx context.Context, name string) (*ledgerd.Ledger, error) {
	l := &ledgerd.Ledger{}
	err := db.queryRow(ctx, LedgerByNameSQL, name).
		Scan(&l.ID, &l.Name, &l.CreatedAt, &l.LastSequence, &l.HotMonths)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListLedgers lists ledgers by name after the cursor name; ledgerID 0 means
// every ledger, otherwise only that one (a scoped key sees its own).
func (db *DB) ListLedgers(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.Ledger, error) {
	rows, err := db.query(ctx, `SELECT id, name, created_at, last_sequence, hot_months FROM ledgers
		WHERE ($1 = 0 OR id = $1) AND name > $2 ORDER BY name LIMIT $3`, ledgerID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledgerd.Ledger
	for rows.Next() {
		l := &ledgerd.Ledger{}
		if err := rows.Scan(&l.ID, &l.Name, &l.CreatedAt, &l.LastSequence, &l.HotMonths); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
