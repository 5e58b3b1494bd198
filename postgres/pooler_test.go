package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

func TestPoolerParameter(t *testing.T) {
	ctx := context.Background()
	base := "postgres://u@127.0.0.1:1/db?sslmode=disable"
	for raw, want := range map[string]bool{base: false, base + "&ledgerd_pooler=pgbouncer": true, base + "&ledgerd_pooler=none": false} {
		db, err := postgres.Open(ctx, postgres.Config{URL: raw})
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if db.PgBouncer() != want {
			t.Fatalf("%s: PgBouncer() = %v", raw, db.PgBouncer())
		}
		db.Close()
	}
	if _, err := postgres.Open(ctx, postgres.Config{URL: base + "&ledgerd_pooler=odyssey"}); err == nil || !strings.Contains(err.Error(), "ledgerd_pooler") {
		t.Fatalf("unknown pooler: %v", err)
	}
}

// Through PgBouncer a connection cannot ask for synchronous_commit at
// start, so a server whose default for the database is off is refused;
// directly connected, the connection's own setting makes it durable.
func TestCheckDurability(t *testing.T) {
	ctx := context.Background()
	raw := ledgertest.DirectURL(t, ledgertest.NewDatabase(t))
	u, _ := url.Parse(raw)
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := strings.TrimPrefix(u.Path, "/")
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	for _, pooled := range []bool{false, true} {
		db, err := postgres.Open(ctx, postgres.Config{URL: raw, PgBouncer: pooled})
		if err != nil {
			t.Fatal(err)
		}
		err = db.CheckDurability(ctx)
		db.Close()
		if pooled && (err == nil || !strings.Contains(err.Error(), "synchronous_commit")) {
			t.Fatalf("pooled, server default off: %v", err)
		}
		if !pooled && err != nil {
			t.Fatalf("direct: %v", err)
		}
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" RESET synchronous_commit"); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: raw, PgBouncer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckDurability(ctx); err != nil {
		t.Fatalf("pooled, server default on: %v", err)
	}
}
