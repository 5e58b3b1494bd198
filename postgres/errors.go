package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// CommitUnknownError means the connection failed while COMMIT was in
// flight: the batch may or may not have committed. The writer resolves it
// with BatchCommitted before answering anyone.
type CommitUnknownError struct {
	LedgerID int64
	// FirstID is the id of the first transaction the batch wrote (zero
	// when it wrote none).
	FirstID pgtype.UUID
	Err     error
}

func (e *CommitUnknownError) Error() string { return "commit outcome unknown: " + e.Err.Error() }
func (e *CommitUnknownError) Unwrap() error { return e.Err }

// Is makes a CommitUnknownError ledgerd.ErrCommitUnknown for errors.Is.
func (e *CommitUnknownError) Is(target error) bool { return target == ledgerd.ErrCommitUnknown }

// BatchCommittedSQL counts the batch's first transaction: 1 if it committed.
const BatchCommittedSQL = `SELECT count(*) FROM transactions WHERE id = $1 AND ledger_id = $2`

// BatchCommitted reports whether the batch of a CommitUnknownError is in the
// database. ok is false when that cannot be told.
func (db *DB) BatchCommitted(ctx context.Context, e *CommitUnknownError) (committed, ok bool) {
	if !e.FirstID.Valid {
		return false, false
	}
	var n int
	err := db.queryRow(ctx, BatchCommittedSQL, e.FirstID, e.LedgerID).Scan(&n)
	if err != nil {
		return false, false
	}
	return n == 1, true
}

func isKeyTakenErr(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "idempotency_keys_pkey"
}

var errKeyTaken = ledgerd.ErrKeyTaken

// IsKeyTaken reports whether err is the batch rollback caused by an
// idempotency key taken outside the ordering lock.
func IsKeyTaken(err error) bool { return errors.Is(err, errKeyTaken) }
