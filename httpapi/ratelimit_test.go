package httpapi_test

import (
	"strconv"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestRateLimit: a burst from one key gets 429 rate_limited with
// Retry-After; another key keeps its own bucket; a 429 changes nothing.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{RateLimit: 5, RateBurst: 5})
	// The bootstrap key is limited too: it gets 5 requests here.
	l := c.ledger("rl")
	busy, calm := c.key(l, "write"), c.key(l, "read")

	created, limited := 0, 0
	for i := 0; i < 200 && limited < 5; i++ {
		r := c.do("POST", accountsPath(l), busy, map[string]any{"id": "acct-" + strconv.Itoa(i), "asset": "USD"})
		switch r.Status {
		case 201:
			created++
		case 429:
			limited++
			if r.Code() != "rate_limited" {
				t.Fatalf("429 with code %q", r.Code())
			}
			ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	if limited == 0 {
		t.Fatalf("200 requests and no 429")
	}
	if created < 5 {
		t.Fatalf("only %d requests of the burst of 5 got through", created)
	}
	// The other key is not affected; it sees exactly the accounts that
	// were answered 201.
	m := c.expect(200, "", "GET", accountsPath(l)+"?limit=1000", calm, nil).JSON()
	if n := len(m["data"].([]any)); n != created {
		t.Fatalf("%d accounts exist, %d creations answered 201", n, created)
	}
}

// TestRateLimitPrecedence: 429 comes after 401, the ledger 404 and 403,
// and before 413, 400 and 422. The rate is so low that no token comes back
// during the test.
func TestRateLimitPrecedence(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{RateLimit: 0.001, RateBurst: 3})
	l := c.ledger("rlp")
	k := c.key(l, "write")
	for i := 0; i < 3; i++ {
		c.expect(200, "", "GET", accountsPath(l), k, nil)
	}
	r := c.expect(429, "rate_limited", "GET", accountsPath(l), k, nil)
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	c.expect(429, "rate_limited", "POST", accountsPath(l), k, pad(`{"id":"x","asset":"USD"}`, 2<<20))
	c.expect(429, "rate_limited", "POST", accountsPath(l), k, `{"id":`)
	c.expect(429, "rate_limited", "POST", accountsPath(l), k, `{"id":"bad id"}`)
	c.expect(429, "rate_limited", "POST", txPath(l), k, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "rl")
	// Checks that come first still answer.
	c.expect(401, "unauthorized", "GET", accountsPath(l), "", nil)
	c.expect(404, "not_found", "GET", accountsPath("nope"), k, nil)
	c.expect(404, "not_found", "GET", "/nowhere", k, nil)
	c.expect(405, "method_not_allowed", "PUT", accountsPath(l), k, nil)
	c.expect(403, "forbidden", "POST", "/v1/ledgers", k, map[string]any{"name": "x"})
	// Requests that need no key are not limited.
	for i := 0; i < 10; i++ {
		c.expect(200, "", "GET", "/healthz", "", nil)
	}
}
