package postgres_test

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// Rows a writer left behind (here: a writer whose checkpoint is not due,
// then forgotten, as after a crash) are brought up to their newest entry
// by the catch-up, and only forward: a second run writes nothing.
func TestCatchUpCheckpoints(t *testing.T) {
	e := newFastEnv(t)
	e.db.BalanceCheckpoint = time.Hour
	cache := postgres.NewAccountCache()
	e.write(cache, item("world", "a", 100, "k1", ""))
	e.write(cache, item("a", "b", 30, "k2", ""), hold("b", "c", 20, "k3"))
	want := map[string]ledgerd.Balance{"a": {Posted: 70}, "b": {Posted: 30, PendingDebits: 20}, "c": {PendingCredits: 20}}
	behind := 0
	for id, w := range want {
		if b, _ := e.row(id); b != w {
			behind++
		}
	}
	if behind == 0 {
		t.Fatal("no row is behind: the test does not exercise the catch-up")
	}
	stale, err := e.db.StaleCheckpoints(e.ctx, "entries")
	if err != nil || stale == 0 {
		t.Fatalf("stale entries before the catch-up: %d, %v", stale, err)
	}
	n, err := e.db.CatchUpCheckpoints(e.ctx, e.lid)
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(behind) {
		t.Fatalf("catch-up wrote %d rows, %d were behind", n, behind)
	}
	for id, w := range want {
		b, v := e.row(id)
		if b != w {
			t.Fatalf("%s's row after the catch-up: %+v, want %+v", id, b, w)
		}
		if a := e.account(id); a.Version != v {
			t.Fatalf("%s: row version %d, account reads version %d", id, v, a.Version)
		}
	}
	if stale, err := e.db.StaleCheckpoints(e.ctx, "entries"); err != nil || stale != 0 {
		t.Fatalf("stale entries after the catch-up: %d, %v", stale, err)
	}
	if n, err := e.db.CatchUpCheckpoints(e.ctx, e.lid); err != nil || n != 0 {
		t.Fatalf("second catch-up wrote %d rows (%v), want 0", n, err)
	}
}
