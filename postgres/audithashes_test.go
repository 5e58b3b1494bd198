package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// Migration 00019 moves the hashes chained into audit_log's columns into
// blocks without changing what the API shows, and its Down puts them back.
func TestAuditHashBlocksMigration(t *testing.T) {
	ctx := context.Background()
	url := ledgertest.NewEmptyDatabase(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.MigrateTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	h := func(c string) string { return strings.Repeat(c, 64) }
	sp := func(s string) *string { return &s }
	// Ledger 1: two chained entries and one unchained; ledger 2: one
	// chained, interleaved with ledger 1's positions.
	for _, r := range []struct {
		ledger     int64
		prev, hash *string
	}{
		{1, sp(h("0")), sp(h("a"))}, {2, sp(h("0")), sp(h("c"))}, {1, sp(h("a")), sp(h("b"))}, {1, nil, nil},
	} {
		if _, err := conn.Exec(ctx, `INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target, prev_hash, hash)
			VALUES ($1, now(), 201, 'k', 'r', 'transaction.create', '/x', $2, $3)`, r.ledger, r.prev, r.hash); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	type link struct{ prev, hash string }
	listed := func(ledger int64) []link {
		t.Helper()
		es, err := db.ListAudit(ctx, ledger, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []link
		for _, e := range es {
			out = append(out, link{e.PrevHash, e.Hash})
		}
		return out
	}
	want1 := []link{{h("0"), h("a")}, {h("a"), h("b")}, {"", ""}}
	if got := listed(1); len(got) != 3 || got[0] != want1[0] || got[1] != want1[1] || got[2] != want1[2] {
		t.Fatalf("ledger 1 after the migration: %v, want %v", got, want1)
	}
	if got := listed(2); len(got) != 1 || got[0] != (link{h("0"), h("c")}) {
		t.Fatalf("ledger 2 after the migration: %v", got)
	}

	if err := db.MigrateDownTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, `SELECT coalesce(prev_hash, '') || '/' || coalesce(hash, '') FROM audit_log ORDER BY position`)
	back, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	wantBack := []string{h("0") + "/" + h("a"), h("0") + "/" + h("c"), h("a") + "/" + h("b"), "/"}
	if strings.Join(back, " ") != strings.Join(wantBack, " ") {
		t.Fatalf("after Down: %v, want %v", back, wantBack)
	}
}
