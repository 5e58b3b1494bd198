package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// DefaultIdempotencyTTL is how long outcomes are kept for replay.
const DefaultIdempotencyTTL = 7 * 24 * time.Hour

// idemRecord is a stored idempotency outcome.
type idemRecord struct {
	Hash          []byte
	Status        int16
	TransactionID *[16]byte
	AccountID     *string
	Problem       []byte
}

func reusedKey() *ledgerd.Error { return ledgerd.ErrKeyReused() }

// ClaimKeySQL takes a key that is free or past its expiry (a placeholder
// row, status 0); no row when another request holds it.
const ClaimKeySQL = `INSERT INTO idempotency_keys (ledger_id, key, request_hash, status, expires_at)
		VALUES ($1, $2, $3, 0, clock_timestamp() + $4::interval)
		ON CONFLICT (ledger_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = 0,
			transaction_id = NULL, account_id = NULL, problem = NULL, created_at = clock_timestamp(), expires_at = EXCLUDED.expires_at
		WHERE idempotency_keys.expires_at <= clock_timestamp()
		RETURNING true`

// ReadKeySQL reads the record of a key claimKey could not take.
const ReadKeySQL = `SELECT request_hash, status, transaction_id, account_id, problem FROM idempotency_keys WHERE ledger_id = $1 AND key = $2`

// claimKey reserves key inside tx. It returns nil when the caller now owns
// the key (a placeholder row, locked by tx until it commits or rolls back),
// or the stored record of an earlier request. A racing request with the same
// key blocks on the placeholder until the owner finishes, then sees its
// outcome, which is exactly the waiting docs/api.md asks for.
func (db *DB) claimKey(ctx context.Context, tx pgx.Tx, ledgerID int64, idem *ledgerd.Idempotency) (*idemRecord, error) {
	var owned bool
	err := tx.QueryRow(ctx, ClaimKeySQL, ledgerID, idem.Key, idem.Hash, db.ttl()).Scan(&owned)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	rec := &idemRecord{}
	err = tx.QueryRow(ctx, ReadKeySQL,
		ledgerID, idem.Key).Scan(&rec.Hash, &rec.Status, &rec.TransactionID, &rec.AccountID, &rec.Problem)
	if err != nil {
		return nil, err
	}
	return rec, nil
}

func (db *DB) ttl() time.Duration {
	if db.IdempotencyTTL > 0 {
		return db.IdempotencyTTL
	}
	return DefaultIdempotencyTTL
}

// DeleteExpiredKeysSQL deletes up to $1 expired records.
const DeleteExpiredKeysSQL = `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1))`

// DeleteExpiredKeys removes up to limit expired idempotency records and
// returns how many it removed; the maintenance loop calls it until it
// returns less than limit.
func (db *DB) DeleteExpiredKeys(ctx context.Context, limit int) (int64, error) {
	// now(), not clock_timestamp(): a stable value can be an index
	// condition of the BRIN index; a volatile one makes this a full scan.
	tag, err := db.exec(ctx, DeleteExpiredKeysSQL, limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
