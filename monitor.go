package ledgerd

import (
	"net/mail"
	"strings"
	"time"
)

// Monitor field and operator names, as the API spells them.
const (
	MonitorAvailable = "available"
	MonitorPosted    = "posted"
)

// Bounds of a monitor's input: a handful of recipients, each an ordinary
// address, so that one monitor cannot turn into a mailing list.
const (
	MaxMonitorRecipients  = 10
	MaxMonitorAddressLen  = 254 // RFC 5321's limit on a forward path
	MaxMonitorDescription = 512
)

// MonitorCondition is a comparison of one of an account's balances with a
// value, in minor units.
type MonitorCondition struct {
	Field    string // MonitorAvailable or MonitorPosted
	Operator string // <, <=, >, >=
	Value    int64
}

// Valid reports whether c names a known field and operator.
func (c MonitorCondition) Valid() bool {
	return (c.Field == MonitorAvailable || c.Field == MonitorPosted) && validOperator(c.Operator)
}

func validOperator(op string) bool {
	switch op {
	case "<", "<=", ">", ">=":
		return true
	}
	return false
}

// Holds reports whether the condition is true of b. An available balance
// that does not fit in 64 bits satisfies nothing: it cannot be compared
// faithfully, and a false negative only delays a trigger to the next
// representable balance.
func (c MonitorCondition) Holds(b Balance) bool {
	v := b.Posted
	if c.Field == MonitorAvailable {
		var ok bool
		if v, ok = b.Available(); !ok {
			return false
		}
	}
	switch c.Operator {
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	}
	return false
}

// Crossed reports whether a transaction that took an account from before
// to after makes c become true: false before, true after. A monitor
// triggers exactly on these, so a condition that stays true triggers once,
// and triggers again only after a transaction made it false in between.
func Crossed(c MonitorCondition, before, after Balance) bool {
	return !c.Holds(before) && c.Holds(after)
}

// Monitor watches one account's balance and notifies its recipients when
// its condition becomes true.
type Monitor struct {
	ID          string
	LedgerID    int64
	Account     string
	Condition   MonitorCondition
	Email       []string
	Description string
	CreatedAt   time.Time
	// Triggers counts the crossings so far; LastTriggeredAt is the commit
	// time of the newest one's transaction (nil: never).
	Triggers        int64
	LastTriggeredAt *time.Time
}

// MonitorTrigger is one crossing: the transaction that made the monitor's
// condition true and the account's balance after it.
type MonitorTrigger struct {
	Ledger        string
	Monitor       *Monitor
	TransactionID string
	Sequence      int64
	CommittedAt   time.Time
	Balance       Balance
}

// ParseRecipient checks one e-mail recipient: a bare address (no display
// name, no angle brackets), within the length bound, with no characters
// that could break a header.
func ParseRecipient(s string) (string, bool) {
	if s == "" || len(s) > MaxMonitorAddressLen || strings.ContainsAny(s, "\r\n<>,;\"") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") && !strings.HasSuffix(s, "@localhost") {
		return "", false
	}
	return a.Address, true
}
