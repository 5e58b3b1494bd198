package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// CreateAPIKey stores a key.
func (db *DB) CreateAPIKey(ctx context.Context, k *ledgerd.APIKey) error {
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The ledger's lock, for the audit entry's position.
		if _, err := tx.Exec(ctx, lockLedgerForEventsSQL, k.LedgerID); err != nil {
			return err
		}
		perSecond, burst := rateLimitCols(k.RateLimit)
		err := tx.QueryRow(ctx, `INSERT INTO api_keys (id, ledger_id, role, secret_hash, rate_limit_per_second, rate_limit_burst)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`,
			k.ID, k.LedgerID, k.Role, k.SecretHash, perSecond, burst).Scan(&k.CreatedAt)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, k.LedgerID, k.ID)
	})
}

const apiKeyCols = `k.id, k.ledger_id, l.name, k.role, k.secret_hash, k.created_at, k.revoked_at, k.rate_limit_per_second, k.rate_limit_burst`

func scanAPIKey(row pgx.Row) (*ledgerd.APIKey, error) {
	k := &ledgerd.APIKey{}
	var perSecond *float64
	var burst *int32
	err := row.Scan(&k.ID, &k.LedgerID, &k.LedgerName, &k.Role, &k.SecretHash, &k.CreatedAt, &k.RevokedAt, &perSecond, &burst)
	if perSecond != nil && burst != nil {
		k.RateLimit = &ledgerd.RateLimit{PerSecond: *perSecond, Burst: int(*burst)}
	}
	return k, err
}

// rateLimitCols is a key's limit as its two columns, both NULL for the
// node's default.
func rateLimitCols(l *ledgerd.RateLimit) (perSecond *float64, burst *int32) {
	if l == nil {
		return nil, nil
	}
	b := int32(l.Burst)
	return &l.PerSecond, &b
}

// APIKeyByIDSQL reads a key with its ledger's name.
const APIKeyByIDSQL = `SELECT ` + apiKeyCols + ` FROM api_keys k JOIN ledgers l ON l.id = k.ledger_id WHERE k.id = $1`

// APIKeyByID returns a key, or nil when there is none.
func (db *DB) APIKeyByID(ctx context.Context, id string) (*ledgerd.APIKey, error) {
	if !textOK(id) {
		return nil, nil // not a key id; PostgreSQL would reject it as text
	}
	k, err := scanAPIKey(db.queryRow(ctx, APIKeyByIDSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return k, err
}

// ListLedgerAPIKeysSQL is a page of one ledger's keys, ListAllAPIKeysSQL
// of every ledger's ($1 is then 0): two statements, so that each has an
// index in its order.
const (
	ListLedgerAPIKeysSQL = `SELECT ` + apiKeyCols + ` FROM api_keys k JOIN ledgers l ON l.id = k.ledger_id
		WHERE k.ledger_id = $1 AND k.id > $2 ORDER BY k.ledger_id, k.id LIMIT $3`
	ListAllAPIKeysSQL = `SELECT ` + apiKeyCols + ` FROM api_keys k JOIN ledgers l ON l.id = k.ledger_id
		WHERE $1 = 0 AND k.id > $2 ORDER BY k.id LIMIT $3`
)

// ListAPIKeys lists keys by id after cursor; ledgerID 0 means all ledgers.
func (db *DB) ListAPIKeys(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.APIKey, error) {
	q := ListLedgerAPIKeysSQL
	if ledgerID == 0 {
		q = ListAllAPIKeysSQL
	}
	rows, err := db.query(ctx, q, ledgerID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledgerd.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked (idempotent: the first revocation time stays).
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The key's ledger's lock, for the audit entry's position.
		var ledgerID int64
		err := tx.QueryRow(ctx, `SELECT l.id FROM ledgers l JOIN api_keys k ON k.ledger_id = l.id WHERE k.id = $1 FOR UPDATE OF l`, id).Scan(&ledgerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE id = $1`, id); err != nil {
			return err
		}
		return writeAudit(ctx, tx, ledgerID, id)
	})
}

// SetAPIKeyRateLimit sets a key's own rate limit (nil: back to the node's
// default) and returns the key as it now is, nil when there is none.
// Every node reads the change when its cache of the key expires.
func (db *DB) SetAPIKeyRateLimit(ctx context.Context, id string, l *ledgerd.RateLimit) (*ledgerd.APIKey, error) {
	if !textOK(id) {
		return nil, nil
	}
	var k *ledgerd.APIKey
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The key's ledger's lock, for the audit entry's position.
		var ledgerID int64
		err := tx.QueryRow(ctx, `SELECT l.id FROM ledgers l JOIN api_keys k ON k.ledger_id = l.id WHERE k.id = $1 FOR UPDATE OF l`, id).Scan(&ledgerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		perSecond, burst := rateLimitCols(l)
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET rate_limit_per_second = $2, rate_limit_burst = $3 WHERE id = $1`, id, perSecond, burst); err != nil {
			return err
		}
		if k, err = scanAPIKey(tx.QueryRow(ctx, APIKeyByIDSQL, id)); err != nil {
			return err
		}
		return writeAudit(ctx, tx, ledgerID, id)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}
