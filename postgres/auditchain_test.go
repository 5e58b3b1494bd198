package postgres_test

import (
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestAuditLag: entries written count as lag until a chainer links them.
func TestAuditLag(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(t.Context(), postgres.Config{URL: ledgertest.NewDatabase(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := db.CreateLedger(t.Context(), "lag")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := db.InsertAudit(t.Context(), l.ID, &ledgerd.AuditEntry{Actor: "k", RequestID: "r", Action: "forbidden", Target: "/x", Status: 403}); err != nil {
			t.Fatal(err)
		}
	}
	if n, age, err := db.AuditLag(t.Context()); err != nil || n != 3 || age <= 0 {
		t.Fatalf("lag %d %v %v, want 3 entries", n, age, err)
	}
	if n, err := db.ChainAudit(t.Context(), 2); err != nil || n != 2 {
		t.Fatalf("chained %d, %v", n, err)
	}
	if n, _, err := db.AuditLag(t.Context()); err != nil || n != 1 {
		t.Fatalf("lag %d after chaining 2 of 3: %v", n, err)
	}
	if n, err := db.ChainAudit(t.Context(), 2); err != nil || n != 1 {
		t.Fatalf("chained %d, %v", n, err)
	}
	if n, age, err := db.AuditLag(t.Context()); err != nil || n != 0 || age != 0 {
		t.Fatalf("lag %d %v %v after chaining all", n, age, err)
	}
	if _, err := db.Verify(t.Context(), "lag"); err != nil {
		t.Fatal(err)
	}
}
