package postgres_test

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// row is an account row's balance columns as stored: the checkpoint.
func (e *fastEnv) row(id string) (b ledgerd.Balance, version int64) {
	e.t.Helper()
	err := e.db.Pool.QueryRow(e.ctx, `SELECT posted, pending_debits, pending_credits, version FROM accounts WHERE ledger_id = $1 AND id = $2`,
		e.lid, id).Scan(&b.Posted, &b.PendingDebits, &b.PendingCredits, &version)
	if err != nil {
		e.t.Fatal(err)
	}
	return b, version
}

func (e *fastEnv) account(id string) *ledgerd.Account {
	e.t.Helper()
	a, err := e.db.Account(e.ctx, e.lid, id)
	if err != nil || a == nil {
		e.t.Fatalf("account %s: %v %v", id, a, err)
	}
	return a
}

func hold(from, to string, amount int64, key string) *ledgerd.WriteItem {
	it := item(from, to, amount, key, "")
	it.Request.Pending = true
	return it
}

// Between checkpoints the account rows stay behind while every read —
// the API's and the next batch's, on this node or another — sees the
// balance of the newest entry; a due checkpoint brings the rows up.
func TestBalanceCheckpoints(t *testing.T) {
	e := newFastEnv(t)
	e.db.BalanceCheckpoint = time.Hour
	cache := postgres.NewAccountCache()
	// The first commit starts a round at once: the rows of a, b and world
	// are written with it. From then on nothing is due for an hour.
	e.write(cache, item("world", "a", 100, "k1", ""), item("world", "b", 100, "k2", ""))
	if b, v := e.row("a"); b.Posted != 100 || v != 1 {
		t.Fatalf("a's row after the first commit: %+v v%d", b, v)
	}
	e.write(cache, item("a", "b", 30, "k3", ""))
	e.write(cache, hold("b", "c", 20, "k4"), item("world", "c", 5, "k5", ""))
	e.write(cache, item("a", "c", 1, "k6", ""))

	want := map[string]ledgerd.Balance{
		"a": {Posted: 69}, "b": {Posted: 130, PendingDebits: 20}, "c": {Posted: 6, PendingCredits: 20},
	}
	for id, w := range want {
		if b, _ := e.row(id); b == w {
			t.Fatalf("%s's row is current (%+v): the commits wrote account rows", id, b)
		}
		if a := e.account(id); a.Balance != w {
			t.Fatalf("%s reads %+v, want %+v", id, a.Balance, w)
		}
	}
	if a := e.account("b"); a.Version != 3 {
		t.Fatalf("b's version %d, want 3", a.Version)
	}
	list, err := e.db.ListAccounts(e.ctx, e.lid, ledgerd.AccountFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if w, ok := want[a.ID]; ok && a.Balance != w {
			t.Fatalf("list: %s %+v, want %+v", a.ID, a.Balance, w)
		}
	}

	// Another node (its own cache, so it reads under the lock) moves on
	// from the entries, not from the rows behind them.
	other := postgres.NewAccountCache()
	e.write(other, item("b", "a", 100, "k7", "")) // b has 110 available: 130 − 20 held
	e.write(other, item("b", "a", 11, "k8", ""))  // 10 left: insufficient funds
	if a := e.account("b"); a.Balance != (ledgerd.Balance{Posted: 30, PendingDebits: 20}) {
		t.Fatalf("b after the other node: %+v", a.Balance)
	}

	// A patch of the account answers with the current balance.
	out, _, err := e.db.PatchAccount(e.ctx, e.lid, "c", &ledgerd.AccountPatch{Metadata: map[string]*string{"k": ptr("v")}}, nil)
	if err != nil || out.Balance != want["c"] {
		t.Fatalf("patch: %+v %v", out, err)
	}

	// Due: the next commit writes what is behind, whoever moved it — even
	// a commit of a rejection only (c holds 6), which writes nothing else.
	e.db.BalanceCheckpoint = time.Nanosecond
	e.write(cache, item("c", "world", 1000, "", ""))
	if b, _ := e.row("c"); b != want["c"] {
		t.Fatalf("c's row after a due checkpoint in a batch of one rejection: %+v, want %+v", b, want["c"])
	}
	e.write(cache, item("world", "c", 1, "k9", ""))
	e.write(cache, item("world", "c", 1, "k10", ""))
	for id, w := range map[string]ledgerd.Balance{
		"a": {Posted: 169}, "b": {Posted: 30, PendingDebits: 20}, "c": {Posted: 8, PendingCredits: 20},
	} {
		if b, _ := e.row(id); b != w {
			t.Fatalf("%s's row after a due checkpoint: %+v, want %+v", id, b, w)
		}
	}
	e.sequences(9) // k8 was rejected
}

// With checkpoints off (a negative interval), every commit writes the rows
// it moved, as older binaries read them.
func TestBalanceCheckpointsOff(t *testing.T) {
	e := newFastEnv(t)
	e.db.BalanceCheckpoint = -1
	cache := postgres.NewAccountCache()
	for i, amount := range []int64{100, 7, 3} {
		e.write(cache, item("world", "a", amount, "k"+string(rune('0'+i)), ""))
		e.write(cache, hold("a", "b", 1, "h"+string(rune('0'+i))))
	}
	if b, v := e.row("a"); b != (ledgerd.Balance{Posted: 110, PendingDebits: 3}) || v != 6 {
		t.Fatalf("a's row: %+v v%d", b, v)
	}
}

func ptr[T any](v T) *T { return &v }
