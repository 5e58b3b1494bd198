package postgres

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd"
)

// Router is the API's store: writes, balance checks and authentication on
// the primary, the reads of the GET routes on a replica in rotation when
// there is one. A read carrying a position (ledgerd.ReadAfter, from a
// Consistency-Token) goes to a replica only once it has replayed past that
// position, waiting at most ReplicaConfig.Wait, else to the primary; a
// replica that fails a read hands it to the primary and leaves rotation
// until its probe answers again. With no replica every read is the
// primary's.
type Router struct {
	*DB
	replicas *Replicas
}

// NewRouter routes over primary and replicas (nil: none).
func NewRouter(primary *DB, replicas *Replicas) *Router {
	return &Router{DB: primary, replicas: replicas}
}

// read runs fn on the replica chosen for ctx, or on the primary; a replica
// that cannot answer (down, conflict with recovery) is replaced by the
// primary, so that a dead replica never fails a read the primary serves.
func read[T any](r *Router, ctx context.Context, fn func(*DB) (T, error)) (T, error) {
	if rep := r.replicas.pick(ctx); rep != nil {
		v, err := fn(rep.db)
		if err == nil || !IsUnavailable(err) || ctx.Err() != nil {
			return v, err
		}
		rep.fail(err)
	}
	return fn(r.DB)
}

// Account reads an account (replica when fresh enough).
func (r *Router) Account(ctx context.Context, ledgerID int64, id string) (*ledgerd.Account, error) {
	return read(r, ctx, func(db *DB) (*ledgerd.Account, error) { return db.Account(ctx, ledgerID, id) })
}

// ListAccounts lists accounts (replica when fresh enough).
func (r *Router) ListAccounts(ctx context.Context, ledgerID int64, f ledgerd.AccountFilter) ([]*ledgerd.Account, error) {
	return read(r, ctx, func(db *DB) ([]*ledgerd.Account, error) { return db.ListAccounts(ctx, ledgerID, f) })
}

// Transaction reads a transaction (replica when fresh enough).
func (r *Router) Transaction(ctx context.Context, ledgerID int64, id string) (*ledgerd.Transaction, error) {
	return read(r, ctx, func(db *DB) (*ledgerd.Transaction, error) { return db.Transaction(ctx, ledgerID, id) })
}

// ListTransactions lists transactions (replica when fresh enough).
func (r *Router) ListTransactions(ctx context.Context, ledgerID int64, f ledgerd.TxFilter) ([]*ledgerd.Transaction, error) {
	return read(r, ctx, func(db *DB) ([]*ledgerd.Transaction, error) { return db.ListTransactions(ctx, ledgerID, f) })
}

// BalanceAt reads a past balance (replica when fresh enough).
func (r *Router) BalanceAt(ctx context.Context, ledgerID int64, account string, t time.Time) (posted, version int64, err error) {
	pv, err := read(r, ctx, func(db *DB) ([2]int64, error) {
		p, v, err := db.BalanceAt(ctx, ledgerID, account, t)
		return [2]int64{p, v}, err
	})
	return pv[0], pv[1], err
}

// Statement reads an account's entries (replica when fresh enough).
func (r *Router) Statement(ctx context.Context, ledgerID int64, account string, f ledgerd.StatementFilter) (*ledgerd.Statement, error) {
	return read(r, ctx, func(db *DB) (*ledgerd.Statement, error) { return db.Statement(ctx, ledgerID, account, f) })
}

// ListLedgers lists ledgers (replica when fresh enough).
func (r *Router) ListLedgers(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.Ledger, error) {
	return read(r, ctx, func(db *DB) ([]*ledgerd.Ledger, error) { return db.ListLedgers(ctx, ledgerID, after, limit) })
}

// ListAPIKeys lists keys (replica when fresh enough). Authentication
// itself (APIKeyByID) reads the primary: a revocation holds at once.
func (r *Router) ListAPIKeys(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.APIKey, error) {
	return read(r, ctx, func(db *DB) ([]*ledgerd.APIKey, error) { return db.ListAPIKeys(ctx, ledgerID, after, limit) })
}

// The writes outside the batch writer read the primary's position after
// committing, so that their answers' tokens cover them (one round trip;
// transfers get theirs in their commit pipeline). A failed read leaves the
// token older: the write stands, and is answered.

// CreateLedger creates a ledger and notes the commit's position.
func (r *Router) CreateLedger(ctx context.Context, name string) (*ledgerd.Ledger, error) {
	l, err := r.DB.CreateLedger(ctx, name)
	r.afterWrite(ctx, err)
	return l, err
}

// CreateAPIKey creates a key and notes the commit's position.
func (r *Router) CreateAPIKey(ctx context.Context, k *ledgerd.APIKey) error {
	err := r.DB.CreateAPIKey(ctx, k)
	r.afterWrite(ctx, err)
	return err
}

// RevokeAPIKey revokes a key and notes the commit's position.
func (r *Router) RevokeAPIKey(ctx context.Context, id string) error {
	err := r.DB.RevokeAPIKey(ctx, id)
	r.afterWrite(ctx, err)
	return err
}

// SetAPIKeyRateLimit sets a key's own limit and notes the commit's position.
func (r *Router) SetAPIKeyRateLimit(ctx context.Context, id string, l *ledgerd.RateLimit) (*ledgerd.APIKey, error) {
	k, err := r.DB.SetAPIKeyRateLimit(ctx, id, l)
	r.afterWrite(ctx, err)
	return k, err
}

// CreateAccount creates an account and notes the commit's position.
func (r *Router) CreateAccount(ctx context.Context, ledgerID int64, na *ledgerd.NewAccount, idem *ledgerd.Idempotency) (*ledgerd.Account, bool, error) {
	a, replayed, err := r.DB.CreateAccount(ctx, ledgerID, na, idem)
	r.afterWrite(ctx, err)
	return a, replayed, err
}

// CreateAccounts creates accounts and notes the commit's position.
func (r *Router) CreateAccounts(ctx context.Context, ledgerID int64, nas []ledgerd.NewAccount) ([]ledgerd.AccountResult, error) {
	out, err := r.DB.CreateAccounts(ctx, ledgerID, nas)
	r.afterWrite(ctx, err)
	return out, err
}

// PatchAccount changes an account and notes the commit's position.
func (r *Router) PatchAccount(ctx context.Context, ledgerID int64, id string, p *ledgerd.AccountPatch, idem *ledgerd.Idempotency) (*ledgerd.Account, bool, error) {
	a, replayed, err := r.DB.PatchAccount(ctx, ledgerID, id, p, idem)
	r.afterWrite(ctx, err)
	return a, replayed, err
}

func (r *Router) afterWrite(ctx context.Context, err error) {
	if err == nil {
		_ = r.DB.readPosition(ctx)
	}
}

// ReadEvents reads a page of a ledger's events (replica when fresh enough).
func (r *Router) ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error) {
	return read(r, ctx, func(db *DB) (ledgerd.EventPage, error) { return db.ReadEvents(ctx, ledgerID, ledgerName, q) })
}

// EventPosition resolves an event id (replica when fresh enough).
func (r *Router) EventPosition(ctx context.Context, ledgerID int64, eventID string) (ledgerd.EventPosition, bool, error) {
	type found struct {
		pos ledgerd.EventPosition
		ok  bool
	}
	f, err := read(r, ctx, func(db *DB) (found, error) {
		pos, ok, err := db.EventPosition(ctx, ledgerID, eventID)
		return found{pos, ok}, err
	})
	return f.pos, f.ok, err
}
