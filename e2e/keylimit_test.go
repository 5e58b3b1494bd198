package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// keyLimitBound is how soon every node must apply a key's changed limit
// (docs/api.md §API keys).
const keyLimitBound = 5 * time.Second

// TestKeyLimitPropagates runs two `ledgerd serve` nodes on one database: a
// key's own rate limit changed through one node is applied by the other
// within 5 s — lowered, the other node answers 429; raised or cleared
// (null: the node's default), it serves again. Once with the budget shared
// in Redis and a default limit, once with each node limiting alone and no
// default limit (a key's own limit holds even then).
func TestKeyLimitPropagates(t *testing.T) {
	bin := buildLedgerd(t)
	for _, tc := range []struct {
		name  string
		redis bool
		env   []string
	}{
		{"shared in Redis", true, []string{"LEDGERD_RATE_LIMIT=1000", "LEDGERD_RATE_BURST=1000"}},
		{"per node, no default", false, []string{"LEDGERD_RATE_LIMIT=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if tc.redis {
				env = append(env, "REDIS_URL="+startRedis(t).URL())
			}
			db := ledgertest.NewDatabase(t)
			a := startNode(t, bin, "a", db, env...)
			b := startNode(t, bin, "b", db, env...)
			keyLimitScenario(t, a, b)
		})
	}
}

func keyLimitScenario(t *testing.T, a, b *node) {
	ctx := context.Background()
	hc := newHTTPClient(t)
	adminA := &client{base: a.URL(), key: ledgertest.AdminKey, hc: hc}
	adminB := &client{base: b.URL(), key: ledgertest.AdminKey, hc: hc}
	adminA.postJSON(t, "/v1/ledgers", map[string]any{"name": "lim"}, http.StatusCreated, nil)
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	adminA.postJSON(t, "/v1/api-keys", map[string]any{"ledger": "lim", "role": "read"}, http.StatusCreated, &key)
	onA := &client{base: a.URL(), key: key.Key, hc: hc}
	onB := &client{base: b.URL(), key: key.Key, hc: hc}

	get := func(c *client) int {
		t.Helper()
		r, err := c.do(ctx, http.MethodGet, "/v1/ledgers/lim", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		switch r.status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if r.header.Get("Retry-After") == "" || r.problem().Code != "rate_limited" {
				t.Fatalf("429 without Retry-After or rate_limited: %s", r)
			}
		default:
			t.Fatalf("unexpected %s", r)
		}
		return r.status
	}
	patch := func(admin *client, limit any) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"rate_limit": limit})
		r, err := admin.do(ctx, http.MethodPatch, "/v1/api-keys/"+key.ID, body, "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("PATCH: %v %v", r, err)
		}
		var k struct {
			RateLimit any `json:"rate_limit"`
		}
		if err := json.Unmarshal(r.body, &k); err != nil {
			t.Fatal(err)
		}
		var want any
		_ = json.Unmarshal(body[len(`{"rate_limit":`):len(body)-1], &want)
		if !reflect.DeepEqual(k.RateLimit, want) {
			t.Fatalf("PATCH answered rate_limit %v, want %v", k.RateLimit, want)
		}
	}
	// await polls c until it answers status, failing beyond the bound.
	await := func(c *client, status int, what string) {
		t.Helper()
		start := time.Now()
		for get(c) != status {
			if time.Since(start) > keyLimitBound {
				t.Fatalf("%s: still not %d %v after the change", what, status, keyLimitBound)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: %d after %v", what, status, time.Since(start).Round(time.Millisecond))
	}
	// served requires n requests spread over both nodes all to be served.
	served := func(n int, what string) {
		t.Helper()
		for i := range n {
			if s := get([]*client{onA, onB}[i%2]); s != http.StatusOK {
				t.Fatalf("%s: request %d of %d answered %d", what, i, n, s)
			}
		}
	}

	// Node b has read the key (its cache holds the default limit).
	served(20, "before any change")

	// Lowered through a: a applies it at once, b within the bound. One
	// request in 1,000 s with a burst of 2: b's polls spend the burst.
	lowest := map[string]any{"per_second": 0.001, "burst": 2}
	patch(adminA, lowest)
	await(onB, http.StatusTooManyRequests, "node b after lowering on a")
	await(onA, http.StatusTooManyRequests, "node a after lowering on a")

	// Raised through b: a serves again within the bound.
	patch(adminB, map[string]any{"per_second": 1000, "burst": 100})
	await(onA, http.StatusOK, "node a after raising on b")
	await(onB, http.StatusOK, "node b after raising on b")
	served(50, "raised")

	// Lowered again, then cleared: back to the node's default.
	patch(adminB, lowest)
	await(onA, http.StatusTooManyRequests, "node a after lowering on b")
	patch(adminA, nil)
	await(onB, http.StatusOK, "node b after clearing on a")
	await(onA, http.StatusOK, "node a after clearing on a")
	served(200, "cleared")

	// The list shows the key's limit as each change left it: null now.
	var list struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	adminB.getJSON(t, "/v1/api-keys?ledger=lim", &list)
	for _, k := range list.Data {
		if strings.Contains(string(k["id"]), key.ID) && string(k["rate_limit"]) != "null" {
			t.Fatalf("cleared key listed with rate_limit %s", k["rate_limit"])
		}
	}
}
