package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

const txCols = `t.id, t.sequence, t.status, t.postings, t.metadata, t.reference, t.created_at, t.expires_at,
	t.pending_id, t.resolved_by, t.reverses, t.reversed_by`

func uuidString(u pgtype.UUID) string {
	if !u.Valid {
		return ""
	}
	return uuid.UUID(u.Bytes).String()
}

// txScan holds the scan targets of txCols. Every target accepts NULL: the
// idempotency lookup LEFT JOINs transactions, and a key whose outcome is
// not a transaction (a stored rejection, an account) yields NULL columns.
type txScan struct {
	id, pendingID, resolvedBy, reverses, reversedBy pgtype.UUID
	seq                                             pgtype.Int8
	status                                          pgtype.Text
	postings, metadata                              []byte
	reference                                       *string
	createdAt                                       pgtype.Timestamptz
	expiresAt                                       *time.Time
}

func (s *txScan) dest() []any {
	return []any{&s.id, &s.seq, &s.status, &s.postings, &s.metadata, &s.reference, &s.createdAt, &s.expiresAt,
		&s.pendingID, &s.resolvedBy, &s.reverses, &s.reversedBy}
}

func (s *txScan) tx() *ledgerd.Transaction {
	t := &ledgerd.Transaction{
		ID: uuidString(s.id), Sequence: s.seq.Int64, Status: ledgerd.Status(s.status.String),
		RawPostings: s.postings, RawMetadata: s.metadata, CreatedAt: s.createdAt.Time.UTC(), ExpiresAt: s.expiresAt,
		PendingID: uuidString(s.pendingID), ResolvedBy: uuidString(s.resolvedBy),
		Reverses: uuidString(s.reverses), ReversedBy: uuidString(s.reversedBy),
	}
	if s.reference != nil {
		t.Reference = *s.reference
	}
	return t
}

// txReadCols are txCols and what reads show besides: the risk, and
// whether it is settled. A transaction gets no risk when it is not posted
// (holds, voids and expiries are not scored; a capture is) or when it
// committed before its ledger's rules were first set (docs/fraud.md).
const txReadCols = txCols + `,
	(SELECT k.risk FROM transaction_risk k WHERE k.ledger_id = t.ledger_id AND k.sequence = t.sequence),
	t.status <> 'posted' OR NOT EXISTS (SELECT 1 FROM fraud_rules f WHERE f.ledger_id = t.ledger_id AND f.start_seq < t.sequence)`

// txReadScan holds the scan targets of txReadCols.
type txReadScan struct {
	txScan
	risk     []byte
	unscored bool
}

func (s *txReadScan) dest() []any { return append(s.txScan.dest(), &s.risk, &s.unscored) }

func (s *txReadScan) tx() *ledgerd.Transaction {
	t := s.txScan.tx()
	t.RawRisk, t.RiskSettled = s.risk, s.risk != nil || s.unscored
	return t
}

func scanTxReadRows(rows pgx.Rows, n int) ([]*ledgerd.Transaction, error) {
	defer rows.Close()
	out := make([]*ledgerd.Transaction, 0, n)
	var s txReadScan
	d := s.dest()
	for rows.Next() {
		s = txReadScan{}
		if err := rows.Scan(d...); err != nil {
			return nil, err
		}
		out = append(out, s.tx())
	}
	return out, rows.Err()
}

func scanTxRows(rows pgx.Rows, n int) ([]*ledgerd.Transaction, error) {
	defer rows.Close()
	out := make([]*ledgerd.Transaction, 0, n)
	var s txScan
	d := s.dest()
	for rows.Next() {
		s = txScan{}
		if err := rows.Scan(d...); err != nil {
			return nil, err
		}
		out = append(out, s.tx())
	}
	return out, rows.Err()
}

// TransactionByIDSQL reads one transaction by its id.
const TransactionByIDSQL = `SELECT ` + txReadCols + ` FROM transactions t WHERE t.id = $1 AND t.ledger_id = $2`

// Transaction returns a transaction by id, or nil. A malformed id is simply
// not found; one of an archived month is a ledgerd.CodeArchived error. The
// id's embedded time lets PostgreSQL prune to one partition.
func (db *DB) Transaction(ctx context.Context, ledgerID int64, id string) (*ledgerd.Transaction, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return nil, nil
	}
	var s txReadScan
	pid := pgtype.UUID{Bytes: u, Valid: true}
	err = db.queryRow(ctx, TransactionByIDSQL, pid, ledgerID).Scan(s.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		// Not online: gone with an archived month (410), or never was.
		return nil, db.archivedTransaction(ctx, ledgerID, pid)
	}
	if err != nil {
		return nil, err
	}
	return s.tx(), nil
}

// ListTransactions lists transactions in sequence order. Postings come with
// each row (they are stored with the transaction), so a page of any size is
// a bounded number of queries: at most two to turn times into sequence
// bounds, and one for the page.
func (db *DB) ListTransactions(ctx context.Context, ledgerID int64, f ledgerd.TxFilter) ([]*ledgerd.Transaction, error) {
	if !textOK(f.Reference) || !textOK(f.Account) {
		return nil, nil // no stored reference or account id is like that
	}
	lo, hi := f.After, int64(math.MaxInt64)
	// created_at never decreases along the sequence, so a time range is a
	// sequence range: find its ends in ledger_commits (one row per commit),
	// then scan by sequence. Retention deletes the rows of archived
	// months (retainarchived.go): a bound then lands on the next commit
	// kept, past only transactions that are not online to be listed.
	if f.From != nil {
		var s int64
		if err := db.queryRow(ctx, FirstSequenceFromSQL, ledgerID, *f.From).Scan(&s); err != nil {
			return nil, err
		}
		if s == math.MaxInt64 {
			return nil, nil
		}
		lo = max(lo, s-1)
	}
	if f.To != nil {
		if err := db.queryRow(ctx, FirstSequenceFromSQL, ledgerID, *f.To).Scan(&hi); err != nil {
			return nil, err
		}
	}
	q, args := ListTransactionsQuery(ledgerID, lo, hi, f)
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return scanTxReadRows(rows, f.Limit)
}

// ListTransactionsQuery is ListTransactions' page statement for f and its
// arguments, once the time range is the sequence range (lo, hi)
// (exported for scripts/explaindb).
func ListTransactionsQuery(ledgerID, lo, hi int64, f ledgerd.TxFilter) (string, []any) {
	args := []any{ledgerID, lo, hi, f.Limit}
	var q string
	switch {
	case f.Reference != "":
		args = append(args, f.Reference)
		q = `SELECT ` + txReadCols + ` FROM transaction_references r JOIN transactions t ON t.id = r.transaction_id
			WHERE r.ledger_id = $1 AND r.reference = $5 AND t.sequence > $2 AND t.sequence < $3`
		if f.Account != "" {
			args = append(args, f.Account)
			q += ` AND EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id AND e.ledger_id = $1 AND e.account_id = $6)`
		}
		q += ` ORDER BY t.sequence LIMIT $4`
	case f.Account != "":
		args = append(args, f.Account)
		q = `SELECT ` + txReadCols + ` FROM (
				SELECT DISTINCT ON (e.sequence) e.sequence, e.transaction_id FROM entries e
				WHERE e.ledger_id = $1 AND e.account_id = $5 AND e.sequence > $2 AND e.sequence < $3
				ORDER BY e.sequence LIMIT $4) s
			JOIN transactions t ON t.id = s.transaction_id ORDER BY s.sequence`
	default:
		q = `SELECT ` + txReadCols + ` FROM transactions t WHERE t.ledger_id = $1 AND t.sequence > $2 AND t.sequence < $3
			ORDER BY t.sequence LIMIT $4`
	}
	return q, args
}

// DueHold is a hold whose deadline has passed.
type DueHold = ledgerd.DueHold

// DueHoldsSQL is up to $1 pending holds past their deadline, soonest first.
const DueHoldsSQL = `SELECT ledger_id, id FROM transactions
		WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= now()
		ORDER BY expires_at LIMIT $1`

// DueHolds returns up to limit pending holds past their deadline, by the
// database clock. (now() rather than clock_timestamp(): only a stable
// value can bound the scan of the partial index.)
func (db *DB) DueHolds(ctx context.Context, limit int) ([]DueHold, error) {
	rows, err := db.query(ctx, DueHoldsSQL, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DueHold
	for rows.Next() {
		var h DueHold
		var id pgtype.UUID
		if err := rows.Scan(&h.LedgerID, &id); err != nil {
			return nil, err
		}
		h.ID = uuidString(id)
		out = append(out, h)
	}
	return out, rows.Err()
}
