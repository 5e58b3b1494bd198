package ledgerd

import (
	"regexp"
	"testing"
	"time"
)

func TestEventTypeOf(t *testing.T) {
	t.Parallel()
	const hold, capture, rev = "0190f0a0-0000-7000-8000-000000000001", "0190f0a0-0000-7000-8000-000000000002", "0190f0a0-0000-7000-8000-000000000003"
	cases := []struct {
		name string
		tx   Transaction
		want EventType
	}{
		{"ordinary_posted", Transaction{Status: StatusPosted}, EventTransactionPosted},
		{"open_hold", Transaction{Status: StatusPending}, EventTransactionPending},
		// A hold read back after its resolution is still the hold's own event.
		{"captured_hold", Transaction{Status: "captured", ResolvedBy: capture}, EventTransactionPending},
		{"voided_hold", Transaction{Status: StatusVoided, ResolvedBy: capture}, EventTransactionPending},
		{"expired_hold", Transaction{Status: StatusExpired, ResolvedBy: capture}, EventTransactionPending},
		{"hold_captured_before_revision", Transaction{Status: StatusPosted, ResolvedBy: capture}, EventTransactionPending},
		{"capture", Transaction{Status: StatusPosted, PendingID: hold}, EventTransactionCaptured},
		{"void", Transaction{Status: StatusVoided, PendingID: hold}, EventTransactionVoided},
		{"expiry", Transaction{Status: StatusExpired, PendingID: hold}, EventTransactionExpired},
		{"reversal", Transaction{Status: StatusPosted, Reverses: rev}, EventTransactionReversed},
		// Being reversed does not change what the original was.
		{"reversed_original", Transaction{Status: StatusPosted, ReversedBy: rev}, EventTransactionPosted},
		{"reversed_capture", Transaction{Status: StatusPosted, PendingID: hold, ReversedBy: rev}, EventTransactionCaptured},
		{"unknown_status", Transaction{Status: "bogus"}, ""},
		{"pending_with_pending_id", Transaction{Status: StatusPending, PendingID: hold}, ""},
		{"reversal_not_posted", Transaction{Status: StatusVoided, Reverses: rev}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := EventTypeOf(&c.tx); got != c.want {
				t.Fatalf("EventTypeOf(%+v) = %q, want %q", c.tx, got, c.want)
			}
			if c.want != "" && !ValidEventType(string(c.want)) {
				t.Fatalf("%q is not a valid event type", c.want)
			}
		})
	}
}

func TestValidEventType(t *testing.T) {
	t.Parallel()
	seen := map[EventType]bool{}
	for _, et := range EventTypes {
		if seen[et] {
			t.Fatalf("%q listed twice", et)
		}
		seen[et] = true
		if !ValidEventType(string(et)) {
			t.Fatalf("%q not valid", et)
		}
	}
	if len(seen) != 11 {
		t.Fatalf("%d event types, the contract has 11", len(seen))
	}
	for _, s := range []string{"", "transaction", "transaction.*", "Transaction.posted", "transaction.posted ", "account.deleted"} {
		if ValidEventType(s) {
			t.Fatalf("%q accepted", s)
		}
	}
}

var uuidV7 = regexp.MustCompile(`^evt_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewEventID(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewEventID(at)
		if !uuidV7.MatchString(id) {
			t.Fatalf("%q is not evt_ + a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("%q drawn twice", id)
		}
		seen[id] = true
		// The first 48 bits are the time in Unix milliseconds (0x1a202b2c57b,
		// computed apart from Go).
		if got, want := id[4:12]+id[13:17], "01a202b2c57b"; got != want {
			t.Fatalf("time bits %s, want %s (%x)", got, want, at.UnixMilli())
		}
		if _, ok := TransactionIDOfEvent(id); !ok {
			t.Fatalf("%q does not parse", id)
		}
	}
}

func TestTransactionEventID(t *testing.T) {
	t.Parallel()
	const tx = "019aab3f-f7fb-7abc-8def-0123456789ab"
	id := TransactionEventID(tx)
	if id != "evt_"+tx {
		t.Fatalf("got %q", id)
	}
	if id != TransactionEventID(tx) {
		t.Fatal("not stable")
	}
	back, ok := TransactionIDOfEvent(id)
	if !ok || back != tx {
		t.Fatalf("TransactionIDOfEvent(%q) = %q, %v", id, back, ok)
	}
	for _, bad := range []string{"", "evt_", tx, "evt_" + tx + "0", "evx_" + tx, "evt_019aab3f-f7fb-7abc-8def-0123456789aB",
		"evt_019aab3f+f7fb-7abc-8def-0123456789ab", "evt_019aab3ff7fb7abc8def0123456789ab"} {
		if got, ok := TransactionIDOfEvent(bad); ok {
			t.Fatalf("TransactionIDOfEvent(%q) = %q, true", bad, got)
		}
	}
}

func TestTransactionEvent(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	tx := &Transaction{ID: "019aab3f-f7fb-7abc-8def-0123456789ab", Sequence: 1042, Status: StatusVoided,
		PendingID: "019aab3f-f7fb-7abc-8def-0123456789aa", CreatedAt: at}
	data := []byte(`{"id":"019aab3f-f7fb-7abc-8def-0123456789ab"}`)
	ev, ok := TransactionEvent("demo", tx, data)
	if !ok || ev.ID != "evt_"+tx.ID || ev.Type != EventTransactionVoided || ev.Ledger != "demo" ||
		ev.Sequence != 1042 || !ev.CreatedAt.Equal(at) || string(ev.Data) != string(data) {
		t.Fatalf("TransactionEvent = %+v, %v", ev, ok)
	}
	if _, ok := TransactionEvent("demo", &Transaction{ID: tx.ID, Status: "bogus"}, data); ok {
		t.Fatal("event made for an unknown kind of transaction")
	}
}
