package ledgerd

import "time"

// Ledger is a ledger's row.
type Ledger struct {
	ID           int64
	Name         string
	CreatedAt    time.Time
	LastSequence int64
	// HotMonths is the retention policy: months of transactions that
	// ended at least this many whole months ago are archived
	// (docs/data-lifecycle.md).
	HotMonths int
}

// DefaultHotMonths and MaxHotMonths bound a ledger's retention policy.
const (
	DefaultHotMonths = 3
	MaxHotMonths     = 1200
)

// APIKey is a stored API key; the secret itself is never stored.
type APIKey struct {
	ID         string
	LedgerID   int64
	LedgerName string
	Role       string
	SecretHash []byte
	CreatedAt  time.Time
	RevokedAt  *time.Time
	// RateLimit is the key's own request rate; nil means the node's
	// default (LEDGERD_RATE_LIMIT, LEDGERD_RATE_BURST).
	RateLimit *RateLimit
}
