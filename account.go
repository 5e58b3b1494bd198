package ledgerd

import (
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on client-chosen names and metadata (docs/api.md).
const (
	MaxAccountIDLen     = 128
	MaxAssetLen         = 16
	MaxMetadataKeys     = 64
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
	MaxLedgerNameLen    = 63
)

// Balance is an account's balances. Available is derived, never stored.
type Balance struct {
	Posted         int64
	PendingDebits  int64
	PendingCredits int64
}

// Available is posted minus pending debits; pending credits never count.
// ok is false when the difference does not fit in 64 bits.
func (b Balance) Available() (v int64, ok bool) {
	return sub(b.Posted, b.PendingDebits)
}

// Account is a ledger account with its balances.
type Account struct {
	ID    string
	Asset string
	// MinBalance is the lowest available balance a transaction may leave;
	// nil means unbounded (a funding or settlement account).
	MinBalance *int64
	Metadata   map[string]string
	Balance    Balance
	Version    int64
	CreatedAt  time.Time
	// Status is AccountActive or AccountFrozen; empty means active.
	Status string
}

// Account statuses: a frozen account may not be debited (docs/api.md
// §Freezing).
const (
	AccountActive = "active"
	AccountFrozen = "frozen"
)

// Frozen reports whether a may not be debited.
func (a *Account) Frozen() bool { return a.Status == AccountFrozen }

// NewAccount is a request to create an account.
type NewAccount struct {
	ID    string
	Asset string
	// MinBalance as in Account; DefaultMinBalance unless the request says.
	MinBalance *int64
	Metadata   map[string]string
}

// Validate checks a new account, with field paths under prefix.
func (a *NewAccount) Validate(v *Validation, prefix string) {
	if a.ID == "" {
		v.Add(prefix+"id", "is required")
	} else if !ValidAccountID(a.ID) {
		v.Add(prefix+"id", "must match ^[A-Za-z0-9][A-Za-z0-9_:.@-]{0,127}$")
	}
	if a.Asset == "" {
		v.Add(prefix+"asset", "is required")
	} else if !ValidAsset(a.Asset) {
		v.Add(prefix+"asset", "must match ^[A-Z][A-Z0-9_]{0,15}$")
	}
	ValidateMetadata(v, prefix+"metadata", a.Metadata, false)
}

// ValidateMetadata checks metadata limits. With patch, values may be
// absent markers (handled by the caller); only sizes are checked here.
// Offending keys are reported in key order, so that the same request
// always gets the same answer. U+0000 is refused: PostgreSQL cannot store
// it in text or jsonb.
func ValidateMetadata(v *Validation, field string, m map[string]string, patch bool) {
	if len(m) > MaxMetadataKeys {
		v.Add(field, "at most %d keys", MaxMetadataKeys)
		return
	}
	var bad []string
	for k, val := range m {
		if k == "" || len(k) > MaxMetadataKeyLen || len(val) > MaxMetadataValueLen || !storable(k) || !storable(val) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	for _, k := range bad {
		val := m[k]
		switch {
		case k == "":
			v.Add(field, "keys must not be empty")
		case len(k) > MaxMetadataKeyLen:
			v.Add(field+"."+truncate(k, 16), "key longer than %d bytes", MaxMetadataKeyLen)
		case len(val) > MaxMetadataValueLen:
			v.Add(field+"."+k, "value longer than %d bytes", MaxMetadataValueLen)
		case !utf8.ValidString(k) || !utf8.ValidString(val):
			v.Add(field+"."+k, "must be valid UTF-8")
		default:
			v.Add(field+"."+k, "must not contain U+0000")
		}
	}
}

// storable reports whether s is text PostgreSQL can store: valid UTF-8
// without NUL.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ValidAccountID reports whether id matches ^[A-Za-z0-9][A-Za-z0-9_:.@-]{0,127}$.
func ValidAccountID(id string) bool {
	if len(id) == 0 || len(id) > MaxAccountIDLen || !alnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !alnum(c) && c != '_' && c != ':' && c != '.' && c != '@' && c != '-' {
			return false
		}
	}
	return true
}

// ValidAsset reports whether s matches ^[A-Z][A-Z0-9_]{0,15}$.
func ValidAsset(s string) bool {
	if len(s) == 0 || len(s) > MaxAssetLen || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

// ValidLedgerName reports whether s matches ^[a-z0-9][a-z0-9_-]{0,62}$.
func ValidLedgerName(s string) bool {
	if len(s) == 0 || len(s) > MaxLedgerNameLen || !lowerDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !lowerDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func lowerDigit(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// Idempotency binds a request to a key (docs/api.md §Idempotency).
type Idempotency struct {
	Key  string
	Hash []byte
}

// AccountResult is the outcome of one item of an account batch.
type AccountResult struct {
	Account *Account
	Err     *Error
}

// AccountPatch is a PATCH of an account: metadata merged (a nil value
// deletes the key), and optionally a new min_balance.
type AccountPatch struct {
	Metadata      map[string]*string
	SetMinBalance bool
	MinBalance    *int64
	// Status, when not empty, freezes or unfreezes the account
	// (AccountFrozen or AccountActive); Reason goes into its event.
	Status string
	Reason *string
}
