package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("keys")
	for _, role := range []string{"read", "write", "admin"} {
		r := c.expect(201, "", "POST", "/v1/api-keys", admin, map[string]any{"ledger": l, "role": role})
		m := r.JSON()
		requireKeys(t, "created key", m, "id", "key", "ledger", "role", "created_at", "rate_limit")
		if str(m, "ledger") != l || str(m, "role") != role || str(m, "id") == "" || str(m, "key") == "" {
			t.Fatalf("created key: %s", r.Body)
		}
		if str(m, "key") == str(m, "id") {
			t.Fatalf("the id is the secret: %s", r.Body)
		}
		requireTime(t, "created_at", m["created_at"])
		// The new key works.
		c.expect(200, "", "GET", "/v1/ledgers/"+l, str(m, "key"), nil)
	}

	before := c.snapshot(l)
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"bad role", map[string]any{"ledger": l, "role": "owner"}, "role"},
		{"bootstrap role", map[string]any{"ledger": l, "role": "bootstrap"}, "role"},
		{"role case", map[string]any{"ledger": l, "role": "Admin"}, "role"},
		{"missing role", map[string]any{"ledger": l}, "role"},
		{"role not a string", map[string]any{"ledger": l, "role": 1}, "role"},
		{"missing ledger", map[string]any{"role": "read"}, "ledger"},
		{"ledger not a string", map[string]any{"ledger": []string{l}, "role": "read"}, "ledger"},
		{"unknown member", map[string]any{"ledger": l, "role": "read", "expires": "never"}, "expires"},
		{"duplicate member", `{"ledger":"keys","role":"read","role":"admin"}`, "role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireField(t, c.with(t).do("POST", "/v1/api-keys", admin, tc.body), tc.field)
		})
	}
	c.expect(404, "not_found", "POST", "/v1/api-keys", admin, map[string]any{"ledger": "nope", "role": "read"})
	c.expect(400, "malformed_json", "POST", "/v1/api-keys", admin, `{"ledger":"keys","role":"read"`)
	c.unchanged(l, before)
}

func TestListAndRevokeAPIKeys(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("keys")
	other := c.ledger("other")
	var created []string
	for i := 0; i < 7; i++ {
		r := c.expect(201, "", "POST", "/v1/api-keys", admin, map[string]any{"ledger": l, "role": []string{"read", "write", "admin"}[i%3]})
		created = append(created, str(r.JSON(), "id"))
	}
	c.key(other, "read")
	otherIDs := ids(c.walk("/v1/api-keys?ledger="+other, admin))
	if len(otherIDs) != 1 {
		t.Fatalf("ledger %s lists keys %q", other, otherIDs)
	}

	// Keyset pagination walks every key once, in id order, never with a secret.
	list := c.walk("/v1/api-keys?ledger="+l+"&limit=2", admin)
	got := ids(list)
	want := slices.Sorted(slices.Values(created))
	if !slices.Equal(got, want) {
		t.Fatalf("walked keys %q, want %q", got, want)
	}
	for _, k := range list {
		requireKeys(t, "listed key", k, "id", "ledger", "role", "created_at", "revoked_at", "rate_limit")
		if k["revoked_at"] != nil || str(k, "ledger") != l {
			t.Fatalf("listed key %v", k)
		}
	}
	raw := string(c.expect(200, "", "GET", "/v1/api-keys?ledger="+l, admin, nil).Body)
	if strings.Contains(raw, `"key"`) || strings.Contains(raw, "secret") {
		t.Fatalf("a list shows secrets: %s", raw)
	}

	// Without ledger=, the bootstrap key sees every ledger's keys.
	all := ids(c.walk("/v1/api-keys?limit=3", admin))
	if want := slices.Sorted(slices.Values(append(slices.Clone(created), otherIDs[0]))); !slices.Equal(all, want) {
		t.Fatalf("bootstrap list without ledger= has %q, want %q", all, want)
	}

	// Revoke: 204, then the key is listed with revoked_at and stops working.
	secret := c.key(l, "write")
	var id string
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		if !slices.Contains(created, str(k, "id")) {
			id = str(k, "id")
		}
	}
	c.expect(200, "", "GET", accountsPath(l), secret, nil)
	r := c.expect(204, "", "DELETE", "/v1/api-keys/"+id, admin, nil)
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %q", r.Body)
	}
	c.expect(401, "unauthorized", "GET", accountsPath(l), secret, nil)
	c.expect(401, "unauthorized", "POST", accountsPath(l), secret, map[string]any{"id": "x", "asset": "USD"})
	var revoked map[string]any
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		if str(k, "id") == id {
			revoked = k
		}
	}
	if revoked == nil {
		t.Fatalf("a revoked key is not listed")
	}
	requireTime(t, "revoked_at", revoked["revoked_at"])
	// Revoking again keeps the first revocation time.
	c.expect(204, "", "DELETE", "/v1/api-keys/"+id, admin, nil)
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		if str(k, "id") == id && k["revoked_at"] != revoked["revoked_at"] {
			t.Fatalf("revoked_at moved from %v to %v", revoked["revoked_at"], k["revoked_at"])
		}
	}

	c.expect(404, "not_found", "DELETE", "/v1/api-keys/0000000000000000", admin, nil)
	c.expect(404, "not_found", "DELETE", "/v1/api-keys/not-an-id", admin, nil)
	c.expect(404, "not_found", "GET", "/v1/api-keys?ledger=nope", admin, nil)
	c.expect(422, "validation_failed", "GET", "/v1/api-keys?limit=1001", admin, nil)
	c.expect(422, "validation_failed", "GET", "/v1/api-keys?limit=0", admin, nil)
	c.expect(422, "validation_failed", "GET", "/v1/api-keys?cursor=***", admin, nil)
}

// TestAPIKeyIsolation is invariant 8 for keys: a ledger admin manages the
// keys of its own ledger and sees nothing of another (404, not 403).
func TestAPIKeyIsolation(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	a, b := c.ledger("alpha"), c.ledger("beta")
	adminA := c.key(a, "admin")
	c.key(b, "admin")
	bRead := c.key(b, "read")
	bReadID := ""
	for _, k := range c.walk("/v1/api-keys?ledger="+b, admin) {
		if str(k, "role") == "read" {
			bReadID = str(k, "id")
		}
	}

	// Its own ledger: create, list (with and without ledger=), revoke.
	r := c.expect(201, "", "POST", "/v1/api-keys", adminA, map[string]any{"ledger": a, "role": "write"})
	newA, newAID := str(r.JSON(), "key"), str(r.JSON(), "id")
	c.expect(201, "", "POST", "/v1/api-keys", adminA, map[string]any{"ledger": a, "role": "admin"})
	for _, path := range []string{"/v1/api-keys", "/v1/api-keys?ledger=" + a} {
		for _, k := range c.walk(path+sep(path)+"limit=2", adminA) {
			if str(k, "ledger") != a {
				t.Fatalf("admin of %s lists a key of %s: %v", a, str(k, "ledger"), k)
			}
		}
	}
	if n := len(c.walk("/v1/api-keys?limit=1000", adminA)); n != 3 {
		t.Fatalf("admin of %s lists %d keys, want 3", a, n)
	}
	c.expect(200, "", "GET", "/v1/ledgers/"+a, newA, nil)
	c.expect(204, "", "DELETE", "/v1/api-keys/"+newAID, adminA, nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers/"+a, newA, nil)

	// Another ledger: 404 for everything, and nothing changes there.
	before := c.snapshot(b)
	c.expect(404, "not_found", "GET", "/v1/api-keys?ledger="+b, adminA, nil)
	c.expect(404, "not_found", "POST", "/v1/api-keys", adminA, map[string]any{"ledger": b, "role": "admin"})
	c.expect(404, "not_found", "DELETE", "/v1/api-keys/"+bReadID, adminA, nil)
	c.unchanged(b, before)
	c.expect(200, "", "GET", "/v1/ledgers/"+b, bRead, nil)

	// Lesser roles may not manage keys at all, even of their own ledger.
	for _, role := range []string{"read", "write"} {
		k := c.key(a, role)
		c.expect(403, "forbidden", "GET", "/v1/api-keys", k, nil)
		c.expect(403, "forbidden", "GET", "/v1/api-keys?ledger="+a, k, nil)
		c.expect(403, "forbidden", "POST", "/v1/api-keys", k, map[string]any{"ledger": a, "role": "read"})
		c.expect(403, "forbidden", "DELETE", "/v1/api-keys/"+bReadID, k, nil)
	}
	c.expect(401, "unauthorized", "GET", "/v1/api-keys", "", nil)
	c.expect(401, "unauthorized", "DELETE", "/v1/api-keys/"+bReadID, "", nil)
	c.expect(200, "", "GET", "/v1/ledgers/"+b, bRead, nil)
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
