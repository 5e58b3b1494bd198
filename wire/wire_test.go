package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// TestAccountCreatedPrefix: prefix + the time as the database renders it
// + suffix is the account object, for the awkward metadata too.
func TestAccountCreatedPrefix(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	for _, na := range []ledgerd.NewAccount{
		{ID: "world", Asset: "USD"},
		{ID: "a:b", Asset: "EUR", MinBalance: new(int64), Metadata: map[string]string{"<&>": "\"\\é\u2028", "a": ""}},
	} {
		got := string(wire.AccountCreatedPrefix(&na)) + at.Format(wire.TimeLayout) + wire.AccountCreatedSuffix
		want := string(wire.AppendAccount(nil, &ledgerd.Account{ID: na.ID, Asset: na.Asset, MinBalance: na.MinBalance,
			Metadata: na.Metadata, CreatedAt: at}))
		if got != want || !json.Valid([]byte(got)) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	ev := &ledgerd.Event{ID: "evt_1", Type: ledgerd.EventAccountCreated, Ledger: "demo",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), Data: []byte(`{"id":"a"}`)}
	got := string(wire.AppendEvent([]byte("x"), ev))
	want := `x{"id":"evt_1","type":"account.created","ledger":"demo","created_at":"2026-01-02T02:04:05.000006Z","data":{"id":"a"}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestAsCommitted: a hold's event shows it pending, whatever became of it;
// nothing shows what happened to it later.
func TestAsCommitted(t *testing.T) {
	for _, tc := range []struct {
		tx         ledgerd.Transaction
		wantStatus ledgerd.Status
	}{
		{ledgerd.Transaction{Status: "captured", ResolvedBy: "c"}, ledgerd.StatusPending},
		{ledgerd.Transaction{Status: ledgerd.StatusPosted, ResolvedBy: "c"}, ledgerd.StatusPending},
		{ledgerd.Transaction{Status: ledgerd.StatusVoided, ResolvedBy: "v"}, ledgerd.StatusPending},
		{ledgerd.Transaction{Status: ledgerd.StatusPosted, ReversedBy: "r"}, ledgerd.StatusPosted},
		{ledgerd.Transaction{Status: ledgerd.StatusVoided, PendingID: "h"}, ledgerd.StatusVoided},
	} {
		orig := tc.tx
		c := wire.AsCommitted(&tc.tx)
		if c.Status != tc.wantStatus || c.ResolvedBy != "" || c.ReversedBy != "" || c.PendingID != orig.PendingID || tc.tx.Status != orig.Status || tc.tx.ResolvedBy != orig.ResolvedBy {
			t.Fatalf("%+v → %+v", orig, c)
		}
	}
}
