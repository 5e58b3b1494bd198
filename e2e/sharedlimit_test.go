package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestSharedRateLimit runs two `ledgerd serve` nodes with one REDIS_URL: a
// key's budget is shared (its requests spread over both nodes get one
// burst, not one per node), a key revoked through one node is refused by
// the other within 5 s, and with Redis stopped both nodes keep serving on
// their own buckets (fail open: 200 or 429, never 5xx) and say so in the
// log.
func TestSharedRateLimit(t *testing.T) {
	const burst = 20
	rs := startRedis(t)
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	env := []string{"REDIS_URL=" + rs.URL(), "LEDGERD_RATE_LIMIT=0.2", "LEDGERD_RATE_BURST=20"}
	a := startNode(t, bin, "a", db, env...)
	b := startNode(t, bin, "b", db, env...)
	fx := newFixture(t, a.URL(), "shared", 2, 1000)
	hc := newHTTPClient(t)
	nodes := []*client{{base: a.URL(), key: fx.writeKey, hc: hc}, {base: b.URL(), key: fx.writeKey, hc: hc}}
	ctx := context.Background()

	ok, refused := 0, [2]int{}
	for i := range 2 * burst {
		c := nodes[i%2]
		r, err := c.do(ctx, http.MethodGet, "/v1/ledgers/"+fx.ledger, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused[i%2]++
			if r.header.Get("Retry-After") == "" || r.problem().Code != "rate_limited" {
				t.Fatalf("429 without Retry-After or rate_limited: %s", r)
			}
		default:
			t.Fatalf("unexpected %s", r)
		}
	}
	// 0.2/s refills at most one token while the 40 requests run.
	if ok < burst || ok > burst+1 {
		t.Fatalf("%d of %d requests over two nodes admitted; one shared burst is %d", ok, 2*burst, burst)
	}
	if refused[0] == 0 || refused[1] == 0 {
		t.Fatalf("refusals per node %v: both nodes must enforce the shared budget", refused)
	}

	// Revocation through node a reaches node b within 5 s (the key cache's
	// TTL); until then b may still answer 429 for the spent budget.
	admin := &client{base: a.URL(), key: ledgertest.AdminKey, hc: hc}
	var keys struct {
		Data []struct {
			ID     string `json:"id"`
			Ledger string `json:"ledger"`
		} `json:"data"`
	}
	admin.getJSON(t, "/v1/api-keys?ledger="+fx.ledger, &keys)
	if len(keys.Data) != 1 {
		t.Fatalf("the ledger has %d keys, want 1", len(keys.Data))
	}
	if r, err := admin.do(ctx, http.MethodDelete, "/v1/api-keys/"+keys.Data[0].ID, nil, ""); err != nil || r.status/100 != 2 {
		t.Fatalf("revoke: %v %v", r, err)
	}
	revoked := time.Now()
	for {
		r, err := nodes[1].do(ctx, http.MethodGet, "/v1/ledgers/"+fx.ledger, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusUnauthorized {
			t.Logf("node b refused the revoked key %v after the revocation", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("node b still answers %s 5 s after the key was revoked on node a", r)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Redis gone: both nodes fall back to their own buckets.
	var key2 struct {
		Key string `json:"key"`
	}
	admin.postJSON(t, "/v1/api-keys", map[string]any{"ledger": fx.ledger, "role": "write"}, http.StatusCreated, &key2)
	rs.stop()
	served := 0
	for i := range 10 {
		c := &client{base: nodes[i%2].base, key: key2.Key, hc: hc}
		start := time.Now()
		r, err := c.do(ctx, http.MethodGet, "/v1/ledgers/"+fx.ledger, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusOK {
			served++
		} else if r.status != http.StatusTooManyRequests {
			t.Fatalf("with Redis down: %s", r)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("with Redis down a request took %v", d)
		}
	}
	if served == 0 {
		t.Fatal("with Redis down no request was served: the limit must fail open to the node's own")
	}
	if !a.hasLine("shared rate limit unavailable") && !b.hasLine("shared rate limit unavailable") {
		t.Fatal("no node logged that the shared rate limit is unavailable")
	}
}
