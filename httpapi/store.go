package httpapi

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd"
)

// Store is what the API reads and writes outside the group-commit writer
// (postgres.DB implements it). Its errors are *ledgerd.Error for what the
// caller did wrong, wrap ledgerd.ErrUnavailable when the database could
// not be used, and mean an internal error otherwise.
type Store interface {
	CheckSchema(ctx context.Context) (int64, error)

	CreateLedger(ctx context.Context, name string) (*ledgerd.Ledger, error)
	LedgerByName(ctx context.Context, name string) (*ledgerd.Ledger, error)
	// SetHotMonths sets a ledger's retention policy (with its audit entry).
	SetHotMonths(ctx context.Context, ledgerID int64, months int) (*ledgerd.Ledger, error)
	// ListLedgers lists ledgers by name after the cursor; ledgerID 0 means
	// every ledger, otherwise only that one.
	ListLedgers(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.Ledger, error)

	keyStore
	CreateAPIKey(ctx context.Context, k *ledgerd.APIKey) error
	ListAPIKeys(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	// SetAPIKeyRateLimit sets a key's own limit (nil: the node's default)
	// and returns the key, nil when there is none.
	SetAPIKeyRateLimit(ctx context.Context, id string, l *ledgerd.RateLimit) (*ledgerd.APIKey, error)

	Account(ctx context.Context, ledgerID int64, id string) (*ledgerd.Account, error)
	CreateAccount(ctx context.Context, ledgerID int64, na *ledgerd.NewAccount, idem *ledgerd.Idempotency) (a *ledgerd.Account, replayed bool, err error)
	CreateAccounts(ctx context.Context, ledgerID int64, nas []ledgerd.NewAccount) ([]ledgerd.AccountResult, error)
	PatchAccount(ctx context.Context, ledgerID int64, id string, p *ledgerd.AccountPatch, idem *ledgerd.Idempotency) (out *ledgerd.Account, replayed bool, err error)
	ListAccounts(ctx context.Context, ledgerID int64, f ledgerd.AccountFilter) ([]*ledgerd.Account, error)

	Transaction(ctx context.Context, ledgerID int64, id string) (*ledgerd.Transaction, error)
	ListTransactions(ctx context.Context, ledgerID int64, f ledgerd.TxFilter) ([]*ledgerd.Transaction, error)
	BalanceAt(ctx context.Context, ledgerID int64, account string, t time.Time) (posted, version int64, err error)
	Statement(ctx context.Context, ledgerID int64, account string, f ledgerd.StatementFilter) (*ledgerd.Statement, error)

	// InsertAudit records an entry on its own (a 403); the other entries
	// are written by the changes they record (ledgerd.Audit).
	InsertAudit(ctx context.Context, ledgerID int64, e *ledgerd.AuditEntry) error
	ListAudit(ctx context.Context, ledgerID, after int64, limit int) ([]*ledgerd.AuditEntry, error)
	AuditEntryExists(ctx context.Context, ledgerID, position int64) (bool, error)
}

// keyStore is what authentication needs: a key by its id (nil when there
// is none).
type keyStore interface {
	APIKeyByID(ctx context.Context, id string) (*ledgerd.APIKey, error)
}
