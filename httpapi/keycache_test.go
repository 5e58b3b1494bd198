package httpapi_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of what an unknown key id or ledger name costs: a bounded number of
// queries whatever a client sends, without slowing real keys, and without
// hiding a key or ledger created later for longer than a few seconds.

// queriesOf returns the queries that read table.
func queriesOf(sql []string, table string) []string {
	var out []string
	for _, q := range sql {
		if strings.Contains(q, table) {
			out = append(out, q)
		}
	}
	return out
}

func unknownKey(i int) string {
	return fmt.Sprintf("ldk_%016x_%s", 0xdead0000+i, strings.Repeat("0", 64))
}

// TestUnknownKeyFlood: one address sending 2,000 distinct, well-formed but
// unknown key ids causes at most burst + rate × elapsed key lookups; beyond
// the budget it is answered 429 with Retry-After, before the database. The
// same unknown id asked again costs no query. A real key keeps working
// from that very address, its cache entry untouched by the flood.
func TestUnknownKeyFlood(t *testing.T) {
	t.Parallel()
	const rate, burst = 5, 20
	counter := &dxQueryCounter{}
	c := setup(t, ledgertest.Options{Tracer: counter, API: func(cfg *httpapi.Config) {
		cfg.AuthFailRate, cfg.AuthFailBurst = rate, burst
	}})
	l := c.ledger("flood")
	real := c.key(l, "read")
	path := accountsPath(l)

	// The same unknown id fifty times: one lookup, then the negative cache.
	counter.take()
	for range 50 {
		c.expect(401, "unauthorized", "GET", path, unknownKey(0), nil)
	}
	if q := queriesOf(counter.take(), "api_keys"); len(q) != 1 {
		t.Fatalf("one unknown id asked 50 times: %d key lookups", len(q))
	}

	c.expect(200, "", "GET", path, real, nil)
	counter.take()
	start := time.Now()
	const n, workers = 2000, 16
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r, err := c.e.TryDo("GET", path, unknownKey(1+i), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Status == 429 && (r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "") {
					t.Errorf("429 without rate_limited and Retry-After: %v %s", r.Header, r.Body)
				}
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	lookups := len(queriesOf(counter.take(), "api_keys"))
	bound := burst + int(rate*elapsed.Seconds()) + 1
	t.Logf("%d unknown ids in %v: statuses %v, %d key lookups (bound %d)", n, elapsed, statuses, lookups, bound)
	if statuses[401]+statuses[429] != n || statuses[429] == 0 {
		t.Fatalf("statuses %v", statuses)
	}
	if lookups > bound || statuses[401] > bound {
		t.Fatalf("%d key lookups and %d 401s for %d unknown ids in %v; at most %d allowed", lookups, statuses[401], n, elapsed, bound)
	}

	// The real key, from the same (exhausted) address: still served. Its
	// entry survived the flood; at most a refresh is due (every 2 s).
	c.expect(200, "", "GET", path, real, nil)
	if q := queriesOf(counter.take(), "api_keys"); len(q) > 1 {
		t.Fatalf("the real key after the flood: %d key lookups", len(q))
	}
	c.expect(200, "", "GET", path, real, nil)
	if q := queriesOf(counter.take(), "api_keys"); len(q) != 0 {
		t.Fatalf("the real key, cached: %d key lookups", len(q))
	}
}

// TestKeyCreatedAfterMiss: a key id that two nodes found missing works on
// both within 5 s of being created elsewhere (here, by a third party
// writing the database), and one created through a node works there at
// once; a revoked key stops within 5 s on the other node.
func TestKeyCreatedAfterMiss(t *testing.T) {
	t.Parallel()
	a := setup(t, ledgertest.Options{})
	b := setup(t, ledgertest.Options{DatabaseURL: a.e.DatabaseURL})
	l := a.ledger("late")
	path := accountsPath(l)

	id := "00000000cafe0001"
	secret := strings.Repeat("7", 64)
	key := "ldk_" + id + "_" + secret
	for _, n := range []client{a, b} {
		n.expect(401, "unauthorized", "GET", path, key, nil)
		n.expect(401, "unauthorized", "GET", path, key, nil) // now cached as missing
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, a.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	hash := sha256.Sum256([]byte(secret))
	if _, err := conn.Exec(ctx, `INSERT INTO api_keys (id, ledger_id, role, secret_hash)
		SELECT $1, id, 'read', $2 FROM ledgers WHERE name = $3`, id, hash[:], l); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	for _, n := range []client{a, b} {
		for {
			r := n.do("GET", path, key, nil)
			if r.Status == 200 {
				break
			}
			if time.Since(created) > 5*time.Second {
				t.Fatalf("a key created %v ago is still %d", time.Since(created), r.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("a key created elsewhere worked on both nodes after %v", time.Since(created))

	// Created through node a: usable there at once, and on b at once too
	// (b never saw the id).
	fresh := a.key(l, "read")
	a.expect(200, "", "GET", path, fresh, nil)
	b.expect(200, "", "GET", path, fresh, nil)
	freshID := strings.Split(fresh, "_")[1]
	a.expect(204, "", "DELETE", "/v1/api-keys/"+freshID, admin, nil)
	a.expect(401, "unauthorized", "GET", path, fresh, nil)
	revoked := time.Now()
	for b.do("GET", path, fresh, nil).Status != 401 {
		if time.Since(revoked) > 5*time.Second {
			t.Fatal("a revoked key still works on another node after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLedgerNameOracle: a scoped key asking for another tenant's ledger and
// for one that does not exist gets the same 404 and causes no query either
// way; the bootstrap key's lookups of a missing name are cached briefly; a
// ledger created on this node is visible at once, one created on another
// node within 5 s.
func TestLedgerNameOracle(t *testing.T) {
	t.Parallel()
	counter := &dxQueryCounter{}
	a := setup(t, ledgertest.Options{Tracer: counter})
	b := setup(t, ledgertest.Options{DatabaseURL: a.e.DatabaseURL})
	mine, theirs := a.ledger("tenant-a"), a.ledger("tenant-b")
	key := a.key(mine, "admin")
	a.expect(200, "", "GET", accountsPath(mine), key, nil)
	for _, name := range []string{theirs, "no-such-ledger"} {
		counter.take()
		for range 3 {
			r := a.expect(404, "not_found", "GET", accountsPath(name), key, nil)
			if !strings.Contains(string(r.Body), name) {
				t.Fatalf("%s: %s", name, r.Body)
			}
		}
		// (A refresh of the key itself may fall in; it reads api_keys.)
		if q := queriesOf(counter.take(), "FROM ledgers"); len(q) != 0 {
			t.Fatalf("a scoped key asking for %q cost %d ledger lookups: %v", name, len(q), q)
		}
	}

	// The bootstrap key sees every ledger; a missing name costs one lookup
	// and is then remembered.
	counter.take()
	for range 20 {
		a.expect(404, "not_found", "GET", accountsPath("later"), admin, nil)
		b.expect(404, "not_found", "GET", accountsPath("later-b"), admin, nil)
	}
	if q := queriesOf(counter.take(), "FROM ledgers"); len(q) > 1 {
		t.Fatalf("20 asks for a missing ledger: %d lookups", len(q))
	}
	a.ledger("later")
	a.expect(200, "", "GET", accountsPath("later"), admin, nil)

	b.expect(404, "not_found", "GET", accountsPath("later-b"), admin, nil)
	a.ledger("later-b") // created on a; b remembers it as missing
	created := time.Now()
	for b.do("GET", accountsPath("later-b"), admin, nil).Status != 200 {
		if time.Since(created) > 5*time.Second {
			t.Fatal("a ledger created on another node is still missing after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
