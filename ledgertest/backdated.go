package ledgertest

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// Transfer is one transfer a Backdated ledger commits, at At: Amount USD
// from "world" to To ("a" when empty), with Reference when given.
type Transfer struct {
	At        time.Time
	Amount    int64
	To        string
	Reference string
}

// Backdated opens a pool on the database at url, creates the ledger with
// the USD accounts "world", "a" and more, and commits each transfer in
// its own batch with the writer's clock set to its time (creating the
// month's partitions first): history in past months, for tests of
// archival. It returns the pool, the ledger's id and the transactions.
func Backdated(t testing.TB, url, ledger string, more []string, transfers ...Transfer) (*postgres.DB, int64, []*ledgerd.Transaction) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	l, err := db.CreateLedger(ctx, ledger)
	if err != nil {
		t.Fatal(err)
	}
	accounts := []ledgerd.NewAccount{{ID: "world", Asset: "USD"}, {ID: "a", Asset: "USD"}}
	for _, id := range more {
		accounts = append(accounts, ledgerd.NewAccount{ID: id, Asset: "USD"})
	}
	if _, err := db.CreateAccounts(ctx, l.ID, accounts); err != nil {
		t.Fatal(err)
	}
	defer func() { db.Clock = nil }()
	var out []*ledgerd.Transaction
	for _, tr := range transfers {
		if err := db.CreateMonthPartitions(ctx, tr.At); err != nil {
			t.Fatal(err)
		}
		at, to := tr.At, tr.To
		if to == "" {
			to = "a"
		}
		db.Clock = func() time.Time { return at }
		it := &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{Reference: tr.Reference,
			Postings: []ledgerd.Posting{{Source: "world", Destination: to, Amount: tr.Amount, Asset: "USD"}}}}
		if err := db.WriteBatch(ctx, l.ID, []*ledgerd.WriteUnit{{Items: []*ledgerd.WriteItem{it}}}, nil); err != nil || it.Err != nil {
			t.Fatal(err, it.Err)
		}
		out = append(out, it.Result)
	}
	return db, l.ID, out
}
