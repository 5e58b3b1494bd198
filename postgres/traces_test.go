package postgres_test

import (
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// A unit's traceparent is stored with each transaction it created, in
// the batch's commit, on the slow path and the fast one; units without
// one (unsampled requests) and replays store nothing.
func TestTraceParentStored(t *testing.T) {
	e := newFastEnv(t)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	c := postgres.NewAccountCache()
	for _, cache := range []*postgres.AccountCache{nil, c, c, c} { // no cache, slow twice (the cache is valid after the second), fast
		sampled := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{item("world", "a", 1, "", "")}, TraceParent: tp}
		plain := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{item("world", "b", 1, "", "")}}
		if err := e.db.WriteBatch(e.ctx, e.lid, []*ledgerd.WriteUnit{sampled, plain}, cache); err != nil {
			t.Fatal(err)
		}
		got, ok, err := e.db.TraceParent(e.ctx, sampled.Items[0].Result.ID)
		if err != nil || !ok || got != tp {
			t.Fatalf("sampled transaction's traceparent: %q %v %v", got, ok, err)
		}
		if got, ok, err := e.db.TraceParent(e.ctx, plain.Items[0].Result.ID); err != nil || ok {
			t.Fatalf("unsampled transaction has a traceparent: %q %v", got, err)
		}
	}
	if fast, _ := c.FastPathCounts(); fast < 1 {
		t.Fatalf("%d fast commits, want the third write's", fast)
	}
	// A replay of a sampled request stores nothing new.
	first := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{item("world", "c", 1, "k-replay", "")}}
	if err := e.db.WriteBatch(e.ctx, e.lid, []*ledgerd.WriteUnit{first}, nil); err != nil {
		t.Fatal(err)
	}
	replay := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{item("world", "c", 1, "k-replay", "")}, TraceParent: tp}
	if err := e.db.WriteBatch(e.ctx, e.lid, []*ledgerd.WriteUnit{replay}, nil); err != nil {
		t.Fatal(err)
	}
	if !replay.Items[0].Replayed {
		t.Fatal("not a replay")
	}
	if _, ok, err := e.db.TraceParent(e.ctx, replay.Items[0].Result.ID); err != nil || ok {
		t.Fatalf("a replay stored a traceparent (%v)", err)
	}
	var n int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM transaction_traces`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d trace rows (%v), want 4", n, err)
	}
}
