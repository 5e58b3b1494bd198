package ledgerd

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// EventType names what an event reports. The set is closed: webhook
// endpoints filter on these names, and an unknown name is a 422.
type EventType string

// Event types. Every transaction in the log is exactly one event, typed by
// what the transaction is (see EventTypeOf); the others come from changes
// outside the log.
const (
	EventTransactionPosted   EventType = "transaction.posted"
	EventTransactionPending  EventType = "transaction.pending"
	EventTransactionCaptured EventType = "transaction.captured"
	EventTransactionVoided   EventType = "transaction.voided"
	EventTransactionExpired  EventType = "transaction.expired"
	EventTransactionReversed EventType = "transaction.reversed"
	EventTransactionFlagged  EventType = "transaction.flagged"
	EventAccountCreated      EventType = "account.created"
	EventAccountFrozen       EventType = "account.frozen"
	EventAccountUnfrozen     EventType = "account.unfrozen"
	EventMonitorTriggered    EventType = "monitor.triggered"
)

// EventTypes lists every event type, in the order the documentation gives
// them.
var EventTypes = []EventType{
	EventTransactionPosted, EventTransactionPending, EventTransactionCaptured,
	EventTransactionVoided, EventTransactionExpired, EventTransactionReversed,
	EventTransactionFlagged, EventAccountCreated, EventAccountFrozen,
	EventAccountUnfrozen, EventMonitorTriggered,
}

// ValidEventType reports whether s names an event type. Matching is exact:
// the names are case-sensitive, as in every other field of the API.
func ValidEventType(s string) bool {
	for _, t := range EventTypes {
		if string(t) == s {
			return true
		}
	}
	return false
}

// EventTypeOf is the type of the event that transaction t's entry in the
// log stands for, or "" if t is none of the known kinds.
//
// The type describes the transaction as committed, not its current state:
// a hold read back after its capture has status captured (voided, expired)
// and ResolvedBy set, but its own event is still transaction.pending; the
// capture, void or expiry is a transaction of its own, with PendingID set,
// and carries the transaction.captured (voided, expired) event.
func EventTypeOf(t *Transaction) EventType {
	switch {
	case t.PendingID != "":
		switch t.Status {
		case StatusPosted:
			return EventTransactionCaptured
		case StatusVoided:
			return EventTransactionVoided
		case StatusExpired:
			return EventTransactionExpired
		}
		return ""
	case t.Reverses != "":
		if t.Status == StatusPosted {
			return EventTransactionReversed
		}
		return ""
	case t.Status == StatusPending || t.Status == StatusCaptured || t.ResolvedBy != "":
		return EventTransactionPending
	case t.Status == StatusPosted:
		return EventTransactionPosted
	}
	return ""
}

// Event is something that happened in a ledger, recorded in the same
// database transaction as the change itself.
type Event struct {
	ID     string
	Type   EventType
	Ledger string
	// Sequence is the transaction's place in the ledger's log for a
	// transaction event, 0 for the others: what a consumer orders
	// transaction events by.
	Sequence int64
	// Position is the event's place in its ledger's order of events (see
	// EventPosition): where a consumer resumes after it.
	Position EventPosition
	// CreatedAt is the change's commit time as the ledger recorded it (for
	// a transaction, its created_at), not the time the event was read or
	// sent, so that every delivery of an event carries the same time.
	CreatedAt time.Time
	// Data is the resource as it was committed, already rendered as JSON
	// (the transaction object with its sequence, or the account object).
	Data []byte
}

// TransactionEvent is the event of committed transaction t in ledger,
// data being t rendered as the API renders it. ok is false when t is none
// of the kinds EventTypeOf knows, which would be a bug in the write path.
func TransactionEvent(ledger string, t *Transaction, data []byte) (ev Event, ok bool) {
	typ := EventTypeOf(t)
	if typ == "" {
		return Event{}, false
	}
	return Event{ID: TransactionEventID(t.ID), Type: typ, Ledger: ledger, Sequence: t.Sequence,
		Position: EventPosition{Sequence: t.Sequence}, CreatedAt: t.CreatedAt, Data: data}, true
}

// EventIDPrefix starts every event id.
const EventIDPrefix = "evt_"

// TransactionEventID is the id of transaction txID's event.
//
// It is derived, not drawn: one transaction is one event, transaction ids
// are UUIDv7s unique across ledgers, so "evt_" + the transaction id is
// unique too, and whoever renders the event (the events API, a relay
// resuming after kill -9, a second worker) gets the same id without
// storing or looking anything up. That is what makes the id stable: a
// receiver de-duplicates redeliveries by webhook-id, which is this id.
// Clients must treat it as opaque; only the server maps it back
// (TransactionIDOfEvent) to find the transaction for an ?after= cursor.
func TransactionEventID(txID string) string { return EventIDPrefix + txID }

// TransactionIDOfEvent returns the transaction id an event id was derived
// from by TransactionEventID, if it has that shape. An event id drawn by
// NewEventID has the same shape, so the caller still checks that the
// transaction exists.
func TransactionIDOfEvent(eventID string) (string, bool) {
	if len(eventID) != len(EventIDPrefix)+36 || eventID[:len(EventIDPrefix)] != EventIDPrefix {
		return "", false
	}
	id := eventID[len(EventIDPrefix):]
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return "", false
		}
	}
	return id, true
}

// NewEventID draws the id of an event that is not a transaction's
// (account created, frozen, unfrozen; flags; monitor triggers). Such an
// event happens once and is stored with its change, so a drawn id is as
// stable as a derived one; it is a UUIDv7 of time at so that ids of both
// kinds look alike and sort roughly by time.
func NewEventID(at time.Time) string {
	var u [16]byte
	_, _ = rand.Read(u[6:]) // crypto/rand.Read never fails (Go 1.24+)
	binary.BigEndian.PutUint64(u[:8], uint64(at.UnixMilli())<<16|uint64(binary.BigEndian.Uint16(u[6:8])))
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	b := make([]byte, 0, len(EventIDPrefix)+36)
	b = append(b, EventIDPrefix...)
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = hex.AppendEncode(b, []byte{x})
	}
	return string(b)
}
