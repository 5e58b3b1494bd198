package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestPoolExhaustedIsOverloaded: when no database connection frees up
// within the acquire timeout, reads and writes fail fast with 503
// overloaded and Retry-After (never 500, never an unbounded wait), change
// nothing, and the node serves again once a connection is free.
func TestPoolExhaustedIsOverloaded(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{PoolMaxConns: 2, AcquireTimeout: 200 * time.Millisecond})
	l := e.Ledger("pool")
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", ledgertest.Int64(0))
	e.Transfer(l, "world", "a", 10, "USD").Expect(t, 201)
	before := e.Do("GET", "/v1/ledgers/"+l, ledgertest.AdminKey, nil).Expect(t, 200).JSON()["last_sequence"]

	ctx := context.Background()
	var held []interface{ Release() }
	for range 2 {
		c, err := e.DB.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, r := range []*ledgertest.Response{
		e.Do("GET", "/v1/ledgers/"+l+"/accounts/a", ledgertest.AdminKey, nil),
		e.Transfer(l, "world", "a", 5, "USD", "Idempotency-Key", "k1"),
	} {
		r.Expect(t, 503, "overloaded")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	for _, c := range held {
		c.Release()
	}
	if got := e.Do("GET", "/v1/ledgers/"+l, ledgertest.AdminKey, nil).Expect(t, 200).JSON()["last_sequence"]; got != before {
		t.Fatalf("last_sequence %v -> %v: the refused write changed the ledger", before, got)
	}
	// The refused request is retried with the same key and goes through.
	e.Transfer(l, "world", "a", 5, "USD", "Idempotency-Key", "k1").Expect(t, 201)
}
