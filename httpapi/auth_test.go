package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// ledgerRoutes is every route of a ledger, with a body that would succeed
// (for the read/write/admin key of that ledger) where one is needed.
func ledgerRoutes(l string) []struct {
	method, path string
	body         any
	write        bool
} {
	acct := accountsPath(l)
	txs := txPath(l)
	return []struct {
		method, path string
		body         any
		write        bool
	}{
		{"GET", "/v1/ledgers/" + l, nil, false},
		{"GET", acct, nil, false},
		{"GET", acct + "?prefix=a&limit=5", nil, false},
		{"GET", acct + "/a", nil, false},
		{"GET", txs, nil, false},
		{"GET", txs + "?account=a", nil, false},
		{"POST", acct, map[string]any{"id": "new-one", "asset": "USD"}, true},
		{"POST", acct + "/batch", map[string]any{"accounts": []any{map[string]any{"id": "new-two", "asset": "USD"}}}, true},
		{"PATCH", acct + "/a", map[string]any{"metadata": map[string]any{"k": "v"}}, true},
		{"POST", txs, tx(posting("world", "a", 1, "USD")), true},
		{"POST", txs + "/batch", map[string]any{"transactions": []any{tx(posting("world", "a", 1, "USD"))}}, true},
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("auth")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	good := c.key(l, "admin")
	id := str(c.walk("/v1/api-keys?ledger="+l, admin)[0], "id")
	// A well-formed key with a known id and the wrong secret.
	forged := "ldk_" + id + "_" + strings.Repeat("0", 64)
	if forged == good {
		t.Fatal("forged key equals the real one")
	}
	before := c.snapshot(l, "world", "a")
	for _, tc := range []struct {
		name string
		auth string
	}{
		{"none", ""},
		{"empty bearer", "Bearer "},
		{"basic scheme", "Basic " + good},
		{"no scheme", good},
		{"unknown key", "Bearer ldk_0123456789abcdef_" + strings.Repeat("1", 64)},
		{"forged secret", "Bearer " + forged},
		{"truncated key", "Bearer " + good[:len(good)-1]},
		{"admin key prefix", "Bearer " + admin[:len(admin)-1]},
		{"garbage", "Bearer %%%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			for _, rt := range ledgerRoutes(l) {
				var r *ledgertest.Response
				if tc.auth == "" {
					r = c.do(rt.method, rt.path, "", rt.body)
				} else {
					r = c.do(rt.method, rt.path, "", rt.body, "Authorization", tc.auth)
				}
				if r.Status != 401 || r.Code() != "unauthorized" {
					t.Errorf("%s %s: %d %s, want 401", rt.method, rt.path, r.Status, r.Body)
				}
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", rt.method, rt.path)
				}
			}
		})
	}
	c.unchanged(l, before)
	// 401 comes before the ledger lookup: an unknown ledger is still 401.
	c.expect(401, "unauthorized", "GET", "/v1/ledgers/nope", "", nil)
	c.expect(401, "unauthorized", "POST", txPath("nope"), "bogus", `{`)
	// The good key works, with either spelling of the scheme.
	c.expect(200, "", "GET", "/v1/ledgers/"+l, "", nil, "Authorization", "Bearer "+good)
	c.expect(200, "", "GET", "/v1/ledgers/"+l, "", nil, "Authorization", "bearer "+good)
}

// TestLedgerIsolation is invariant 8: a key of one ledger, whatever its
// role, sees nothing of another: every route answers 404 not_found (not
// 403, so names do not leak), exactly as for a ledger that does not exist,
// and nothing changes there.
func TestLedgerIsolation(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	a, b := c.ledger("alpha"), c.ledger("beta")
	for _, l := range []string{a, b} {
		c.account(l, "world", "USD", nil)
		c.account(l, "a", "USD", ledgertest.Int64(0))
		c.fund(l, "world", "a", 100, "USD")
	}
	trB := c.fund(b, "world", "a", 1, "USD")
	before := c.snapshot(b, "world", "a", "new-one", "new-two")
	for _, role := range []string{"read", "write", "admin"} {
		k := c.key(a, role)
		for _, target := range []string{b, "does-not-exist"} {
			routes := ledgerRoutes(target)
			routes = append(routes, struct {
				method, path string
				body         any
				write        bool
			}{"GET", txPath(target) + "/" + str(trB, "id"), nil, false})
			for _, rt := range routes {
				r := c.do(rt.method, rt.path, k, rt.body)
				if r.Status != 404 || r.Code() != "not_found" {
					t.Errorf("%s key of %s: %s %s: %d %s, want 404", role, a, rt.method, rt.path, r.Status, r.Body)
				}
				// A malformed body changes nothing: the ledger check comes first.
				if rt.write {
					if r := c.do(rt.method, rt.path, k, `{"x":`); r.Status != 404 {
						t.Errorf("%s %s with a malformed body: %d, want 404", rt.method, rt.path, r.Status)
					}
				}
			}
		}
		// The key still works on its own ledger.
		c.expect(200, "", "GET", "/v1/ledgers/"+a, k, nil)
	}
	// A transaction id of ledger B is not found through ledger A either.
	c.expect(404, "not_found", "GET", txPath(a)+"/"+str(trB, "id"), admin, nil)
	c.unchanged(b, before)
}

// TestRoles: read may only GET; write may also create and patch accounts
// (metadata) and post transactions; only an admin may change min_balance.
func TestRoles(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("roles")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	read, write, adm := c.key(l, "read"), c.key(l, "write"), c.key(l, "admin")

	before := c.snapshot(l, "world", "a", "new-one", "new-two")
	for _, rt := range ledgerRoutes(l) {
		if !rt.write {
			c.expect(200, "", rt.method, rt.path, read, nil)
			continue
		}
		c.expect(403, "forbidden", rt.method, rt.path, read, rt.body)
		// 403 comes before 413, 400 and 422.
		c.expect(403, "forbidden", rt.method, rt.path, read, `{"oops"`)
		c.expect(403, "forbidden", rt.method, rt.path, read, map[string]any{"unknown": true})
		c.expect(403, "forbidden", rt.method, rt.path, read, strings.Repeat(" ", 17<<20))
	}
	c.unchanged(l, before)

	// write: creates and patches metadata, posts; min_balance is admin's.
	for i, rt := range ledgerRoutes(l) {
		if !rt.write {
			continue
		}
		want := http.StatusCreated
		if rt.method == "PATCH" || strings.HasSuffix(rt.path, "/batch") {
			want = http.StatusOK
		}
		if i%2 == 0 {
			c.expect(want, "", rt.method, rt.path, write, rt.body)
		} else {
			c.expect(want, "", rt.method, rt.path, adm, rt.body)
		}
	}
	before = c.snapshot(l, "a")
	c.expect(403, "forbidden", "PATCH", accountsPath(l)+"/a", write, map[string]any{"min_balance": -50})
	c.expect(403, "forbidden", "PATCH", accountsPath(l)+"/a", write, map[string]any{"min_balance": nil})
	c.expect(403, "forbidden", "PATCH", accountsPath(l)+"/a", write, map[string]any{"min_balance": 0, "metadata": map[string]any{"x": "y"}})
	c.unchanged(l, before)
	m := c.expect(200, "", "PATCH", accountsPath(l)+"/a", adm, map[string]any{"min_balance": -50}).JSON()
	if num(t, m["min_balance"]) != -50 {
		t.Fatalf("admin PATCH min_balance: %v", m)
	}
	// Keys and ledgers are beyond write.
	c.expect(403, "forbidden", "POST", "/v1/api-keys", write, map[string]any{"ledger": l, "role": "read"})
	c.expect(403, "forbidden", "POST", "/v1/ledgers", adm, map[string]any{"name": "x"})
}
