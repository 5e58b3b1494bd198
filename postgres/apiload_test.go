package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// The tail reads the sum of what the API nodes published within the last
// second: a node's newer figure replaces its older one, and a node that
// stopped publishing a second ago counts nothing (and is forgotten after
// an hour).
func TestAPILoad(t *testing.T) {
	ctx := context.Background()
	url := ledgertest.NewDatabase(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	load := func() float64 {
		t.Helper()
		v, err := db.APILoad(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := load(); v != 0 {
		t.Fatalf("no node published: load %v", v)
	}
	for node, v := range map[string]float64{"a": 40, "b": 2.5, "c": 7} {
		if err := db.PublishLoad(ctx, node, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PublishLoad(ctx, "a", 10); err != nil {
		t.Fatal(err)
	}
	if v := load(); v != 19.5 {
		t.Fatalf("load %v, want 10 + 2.5 + 7", v)
	}
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE api_load SET at = at - interval '2 seconds' WHERE node = 'c';
		UPDATE api_load SET at = at - interval '2 hours' WHERE node = 'b'`); err != nil {
		t.Fatal(err)
	}
	if v := load(); v != 10 {
		t.Fatalf("load %v with two nodes silent for seconds: want only a's 10", v)
	}
	if err := db.ForgetLoads(ctx); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	rows, _ := conn.Query(ctx, `SELECT node FROM api_load ORDER BY node`)
	if nodes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0] != "a" || nodes[1] != "c" {
		t.Fatalf("after forgetting: nodes %v, want [a c] (b was silent for two hours)", nodes)
	}
}
