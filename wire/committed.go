package wire

import (
	"bytes"
	"time"

	"github.com/ledgerd/ledgerd"
)

// AsCommitted returns transaction t as it was when it was committed, which
// is what its event carries (docs/api.md §Events): a hold read back after
// its resolution is pending again, without resolved_by, and no transaction
// shows the reversed_by it gained later. Everything else about a
// transaction is immutable, so the event renders the same bytes on every
// read and every delivery.
func AsCommitted(t *ledgerd.Transaction) *ledgerd.Transaction {
	c := *t
	if ledgerd.EventTypeOf(t) == ledgerd.EventTransactionPending {
		c.Status = ledgerd.StatusPending
	}
	c.ResolvedBy, c.ReversedBy = "", ""
	return &c
}

// AccountCreatedPrefix is the data of new account na's account.created
// event up to its created_at value, which the database fills in when it
// inserts the account (the clock is the database's): appending the time
// in PGTimeFormat and AccountCreatedSuffix gives exactly what
// AppendAccount renders for the new account. That keeps the event written
// in the statement that creates the account, with no round trip to read
// the time back.
func AccountCreatedPrefix(na *ledgerd.NewAccount) []byte {
	b := AppendAccount(nil, &ledgerd.Account{ID: na.ID, Asset: na.Asset, MinBalance: na.MinBalance,
		Metadata: na.Metadata, CreatedAt: time.Unix(0, 0)})
	const tail = `"1970-01-01T00:00:00.000000Z"}`
	if !bytes.HasSuffix(b, []byte(tail)) {
		panic("wire: the account object no longer ends with created_at")
	}
	return append(b[:len(b)-len(tail)], '"')
}

// AccountCreatedSuffix closes what AccountCreatedPrefix opened, after the
// time.
const AccountCreatedSuffix = `"}`
