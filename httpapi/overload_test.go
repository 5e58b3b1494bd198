package httpapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/httpapi"
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

// TestConcurrencyLimitSheds: beyond the concurrency limit a request is
// answered 503 overloaded with Retry-After at once (not after the pool's
// acquire timeout), the probes are never shed, and a freed slot admits
// again.
func TestConcurrencyLimitSheds(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{PoolMaxConns: 1, AcquireTimeout: 3 * time.Second,
		API: func(c *httpapi.Config) {
			c.Admission = httpapi.AdmissionConfig{Target: time.Hour, Min: 1, Max: 1}
		}})
	l := e.Ledger("shed")
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", ledgertest.Int64(0))

	conn, err := e.DB.Pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(conn.Release) }
	defer release()
	// This one takes the only slot and waits for the held connection.
	first := make(chan *ledgertest.Response, 1)
	go func() { first <- e.Transfer(l, "world", "a", 5, "USD", "Idempotency-Key", "held") }()
	// A probe that won the slot before the transfer waits out the acquire
	// timeout; one that finds the slot taken is answered at once.
	time.Sleep(100 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	var shed *ledgertest.Response
	for time.Now().Before(deadline) {
		start := time.Now()
		r := e.Do("GET", "/v1/ledgers/"+l, ledgertest.AdminKey, nil)
		if r.Status == 503 && time.Since(start) < 500*time.Millisecond {
			shed = r
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if shed == nil {
		t.Fatal("no request was shed while the only slot was taken")
	}
	shed.Expect(t, 503, "overloaded")
	if shed.Header.Get("Retry-After") == "" {
		t.Fatal("shed without Retry-After")
	}
	e.Do("GET", "/healthz", "", nil).Expect(t, 200)
	release()
	(<-first).Expect(t, 201)
	e.Do("GET", "/v1/ledgers/"+l, ledgertest.AdminKey, nil).Expect(t, 200)
}
