package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// fastEnv is a ledger with accounts world (unbounded) and a, b, c (floor 0).
type fastEnv struct {
	t   *testing.T
	ctx context.Context
	db  *postgres.DB
	lid int64
}

func newFastEnv(t *testing.T) *fastEnv {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewDatabase(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	l, err := db.CreateLedger(ctx, "fast")
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	nas := []ledgerd.NewAccount{{ID: "world", Asset: "USD"}}
	for _, id := range []string{"a", "b", "c"} {
		nas = append(nas, ledgerd.NewAccount{ID: id, Asset: "USD", MinBalance: &zero})
	}
	if _, err := db.CreateAccounts(ctx, l.ID, nas); err != nil {
		t.Fatal(err)
	}
	return &fastEnv{t: t, ctx: ctx, db: db, lid: l.ID}
}

// item is a transfer with key k (none if empty) and reference ref.
func item(from, to string, amount int64, key, ref string) *ledgerd.WriteItem {
	return &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{Reference: ref,
		Postings: []ledgerd.Posting{{Source: from, Destination: to, Amount: amount, Asset: "USD"}}},
		IdempotencyKey: key, RequestHash: []byte(fmt.Sprintf("%s>%s:%d:%s", from, to, amount, ref))}
}

func units(items ...*ledgerd.WriteItem) []*ledgerd.WriteUnit {
	us := make([]*ledgerd.WriteUnit, len(items))
	for i, it := range items {
		us[i] = &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{it}}
	}
	return us
}

func (e *fastEnv) write(cache *postgres.AccountCache, items ...*ledgerd.WriteItem) {
	e.t.Helper()
	if err := e.db.WriteBatch(e.ctx, e.lid, units(items...), cache); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fastEnv) posted(id string) int64 {
	e.t.Helper()
	a, err := e.db.Account(e.ctx, e.lid, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance.Posted
}

// sequences checks that the ledger's transactions are numbered 1..n.
func (e *fastEnv) sequences(n int) {
	e.t.Helper()
	txs, err := e.db.ListTransactions(e.ctx, e.lid, ledgerd.TxFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(txs) != n {
		e.t.Fatalf("%d transactions, want %d", len(txs), n)
	}
	for i, tx := range txs {
		if tx.Sequence != int64(i+1) {
			e.t.Fatalf("transaction %d has sequence %d", i, tx.Sequence)
		}
	}
}

func TestFastPathCommitsReplaysAndRefusesDuplicates(t *testing.T) {
	e := newFastEnv(t)
	cache := postgres.NewAccountCache()
	first := item("world", "a", 100, "k1", "r1")
	e.write(cache, first, item("world", "b", 50, "k2", ""), item("world", "c", 1, "k0", ""))
	// The first batch loaded the accounts; the cache is valid after a
	// second slow one confirms nobody else wrote.
	e.write(cache, item("a", "b", 10, "k3", ""))
	c0, _ := cache.FastPathCounts()

	e.write(cache, item("a", "c", 5, "k4", "r4"))
	c1, r1 := cache.FastPathCounts()
	if c1 != c0+1 {
		t.Fatalf("fast commits %d → %d: the batch did not take the fast path", c0, c1)
	}

	// A retried key and a taken reference: the fast path rolls back and
	// the slow path answers the replay and the duplicate.
	replay := item("world", "a", 100, "k1", "r1")
	dup := item("world", "b", 1, "k5", "r4")
	over := item("c", "world", 7, "k6", "") // c holds 6: insufficient funds
	ok := item("b", "c", 7, "k7", "")
	e.write(cache, replay, dup, over, ok)
	if _, r2 := cache.FastPathCounts(); r2 != r1+1 {
		t.Fatalf("fast retries %d → %d, want one", r1, r2)
	}
	if !replay.Replayed || replay.Result == nil || replay.Result.ID != first.Result.ID {
		t.Fatalf("replay: %+v %+v", replay.Result, replay.Err)
	}
	if dup.Err == nil || dup.Err.Code != ledgerd.CodeDuplicateReference {
		t.Fatalf("duplicate reference: %+v", dup.Err)
	}
	if over.Err == nil || over.Err.Code != ledgerd.CodeInsufficientFunds {
		t.Fatalf("overdraft: %+v", over.Err)
	}
	if ok.Err != nil || ok.Result == nil {
		t.Fatalf("transfer: %+v", ok.Err)
	}
	if a, b, c := e.posted("a"), e.posted("b"), e.posted("c"); a != 85 || b != 53 || c != 13 {
		t.Fatalf("balances a=%d b=%d c=%d, want 85 53 13", a, b, c)
	}
	e.sequences(6)

	// The stored rejection replays on the next attempt (slow path: the fast
	// path is cooling down after its rollback).
	over2 := item("c", "world", 7, "k6", "")
	e.write(cache, over2)
	if !over2.Replayed || over2.Err == nil || over2.Err.Code != ledgerd.CodeInsufficientFunds {
		t.Fatalf("replayed rejection: %+v %+v", over2.Result, over2.Err)
	}
}

func TestFastPathGuardSeesAnotherWriter(t *testing.T) {
	e := newFastEnv(t)
	one, two := postgres.NewAccountCache(), postgres.NewAccountCache()
	e.write(one, item("world", "a", 100, "", ""))
	e.write(one, item("world", "b", 100, "", ""))
	e.write(two, item("a", "c", 30, "", "")) // another node: one's cache is stale now
	_, r0 := one.FastPathCounts()
	// one still believes a holds 100: the fast path must not let a go
	// below its floor on that belief.
	over := item("a", "b", 80, "", "")
	e.write(one, over)
	if _, r1 := one.FastPathCounts(); r1 != r0+1 {
		t.Fatalf("fast retries %d → %d: the guard did not fail", r0, r1)
	}
	if over.Err == nil || over.Err.Code != ledgerd.CodeInsufficientFunds {
		t.Fatalf("transfer on a stale cache: %+v %+v", over.Result, over.Err)
	}
	if a, c := e.posted("a"), e.posted("c"); a != 70 || c != 30 {
		t.Fatalf("balances a=%d c=%d, want 70 30", a, c)
	}
	e.sequences(3)
}

// TestFastPathOverlap commits two fast batches at once, the second
// prepared on the first's outcome and inserting while the first holds the
// lock; then the same with the first poisoned, which must take the second
// down with it, both then written again on the slow path.
func TestFastPathOverlap(t *testing.T) {
	e := newFastEnv(t)
	cache := postgres.NewAccountCache()
	e.write(cache, item("world", "a", 100, "", "taken"), item("world", "c", 1, "", ""))
	e.write(cache, item("world", "b", 100, "", ""))

	commitPair := func(first, second []*ledgerd.WriteUnit) (error, error) {
		fb1 := e.db.PrepareFast(e.lid, first, cache)
		fb2 := e.db.PrepareFast(e.lid, second, cache)
		if fb1 == nil || fb2 == nil {
			t.Fatal("not eligible for the fast path")
		}
		locked := make(chan struct{})
		var once sync.Once
		open := func() { once.Do(func() { close(locked) }) }
		errs := make(chan error, 1)
		go func() {
			err := fb1.Commit(e.ctx, nil, open)
			open() // as the writer does: also when it failed, possibly after locking
			errs <- err
		}()
		err2 := fb2.Commit(e.ctx, locked, nil)
		return <-errs, err2
	}

	// a: 100 → 60 → 30; the second batch is only possible after the first.
	x, y := item("a", "c", 40, "x", ""), item("a", "c", 30, "y", "")
	if err1, err2 := commitPair(units(x), units(y)); err1 != nil || err2 != nil {
		t.Fatalf("overlapped commits: %v, %v", err1, err2)
	}
	cache.FastCommitted()
	if x.Err != nil || y.Err != nil || y.Result.Sequence != x.Result.Sequence+1 {
		t.Fatalf("results %+v %+v", x, y)
	}
	if a, c := e.posted("a"), e.posted("c"); a != 30 || c != 71 {
		t.Fatalf("balances a=%d c=%d, want 30 71", a, c)
	}

	// The first batch reuses a stored reference: its insert fails (under
	// the lock, after its guard). The second was applied on its outcome
	// and must not commit.
	p, q := item("b", "c", 10, "p", "taken"), item("b", "c", 20, "q", "")
	err1, err2 := commitPair(units(p), units(q))
	if !postgres.IsFastPathRetry(err1) || !postgres.IsFastPathRetry(err2) {
		t.Fatalf("poisoned pair: %v, %v", err1, err2)
	}
	cache.Invalidate()
	e.write(cache, p)
	e.write(cache, q)
	if p.Err == nil || p.Err.Code != ledgerd.CodeDuplicateReference || q.Err != nil {
		t.Fatalf("rewritten: %+v %+v", p.Err, q.Err)
	}
	if b, c := e.posted("b"), e.posted("c"); b != 80 || c != 91 {
		t.Fatalf("balances b=%d c=%d, want 80 91", b, c)
	}
	e.sequences(6)
}

// TestFastPathOverlapSameSequenceFromAnotherWriter: the batch ahead fails
// its guard because another node committed as many transactions as it
// holds, leaving the ledger at the very last_sequence the batch behind
// was prepared on. The batch behind must fail too: its balances include
// the outcome of a batch that never committed.
func TestFastPathOverlapSameSequenceFromAnotherWriter(t *testing.T) {
	e := newFastEnv(t)
	cache, other := postgres.NewAccountCache(), postgres.NewAccountCache()
	e.write(cache, item("world", "a", 100, "", ""), item("world", "b", 100, "", ""))
	e.write(cache, item("world", "c", 1, "", ""))

	x, y := item("a", "c", 40, "x", ""), item("a", "c", 30, "y", "")
	fb1 := e.db.PrepareFast(e.lid, units(x), cache)
	fb2 := e.db.PrepareFast(e.lid, units(y), cache)
	if fb1 == nil || fb2 == nil {
		t.Fatal("not eligible for the fast path")
	}
	// Another node writes one transaction: last_sequence moves to where
	// fb1 would have left it.
	e.write(other, item("b", "c", 10, "z", ""))

	locked := make(chan struct{})
	err1 := fb1.Commit(e.ctx, nil, nil)
	close(locked) // as the writer does once the batch ahead has returned
	err2 := fb2.Commit(e.ctx, locked, nil)
	if !postgres.IsFastPathRetry(err1) {
		t.Fatalf("batch ahead on a stale cache: %v", err1)
	}
	if !postgres.IsFastPathRetry(err2) {
		t.Fatalf("batch behind committed on the outcome of a batch that did not: %v", err2)
	}
	cache.Invalidate()
	e.write(cache, x)
	e.write(cache, y)
	if x.Err != nil || y.Err != nil {
		t.Fatalf("rewritten: %+v %+v", x.Err, y.Err)
	}
	if a, b, c := e.posted("a"), e.posted("b"), e.posted("c"); a != 30 || b != 90 || c != 81 {
		t.Fatalf("balances a=%d b=%d c=%d, want 30 90 81", a, b, c)
	}
	e.sequences(6)
}
