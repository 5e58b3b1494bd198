package httpapi_test

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestCreatedLocation: every 201 names the new resource's URL path in
// Location, and that path serves (or, for an API key, revokes) it. Batches
// answer 200 and name nothing.
func TestCreatedLocation(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	location := func(r interface{ Get(string) string }, want string) {
		t.Helper()
		if got := r.Get("Location"); got != want {
			t.Fatalf("Location %q, want %q", got, want)
		}
	}

	r := c.expect(201, "", "POST", "/v1/ledgers", admin, map[string]any{"name": "loc"})
	location(r.Header, "/v1/ledgers/loc")
	c.expect(200, "", "GET", r.Header.Get("Location"), admin, nil)

	r = c.expect(201, "", "POST", accountsPath("loc"), admin, map[string]any{"id": "users:a@b.c", "asset": "USD"})
	location(r.Header, "/v1/ledgers/loc/accounts/users:a@b.c")
	if got := str(c.expect(200, "", "GET", r.Header.Get("Location"), admin, nil).JSON(), "id"); got != "users:a@b.c" {
		t.Fatalf("GET Location: account %q", got)
	}
	c.account("loc", "world", "USD", nil)

	r = c.transfer("loc", "world", "users:a@b.c", 5, "USD")
	id := str(r.JSON(), "id")
	location(r.Header, "/v1/ledgers/loc/transactions/"+id)
	if got := str(c.expect(200, "", "GET", r.Header.Get("Location"), admin, nil).JSON(), "id"); got != id {
		t.Fatalf("GET Location: transaction %q, want %q", got, id)
	}

	r = c.expect(201, "", "POST", "/v1/api-keys", admin, map[string]any{"ledger": "loc", "role": "read"})
	location(r.Header, "/v1/api-keys/"+str(r.JSON(), "id"))
	key := str(r.JSON(), "key")
	c.expect(200, "", "GET", "/v1/ledgers/loc", key, nil)
	c.expect(204, "", "DELETE", r.Header.Get("Location"), admin, nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers/loc", key, nil)

	// Batches create many resources: 200, no Location.
	r = c.expect(200, "", "POST", accountsPath("loc")+"/batch", admin, map[string]any{"accounts": []any{map[string]any{"id": "b", "asset": "USD"}}})
	location(r.Header, "")
	r = c.expect(200, "", "POST", txPath("loc")+"/batch", admin, map[string]any{"transactions": []any{tx(posting("world", "b", 1, "USD"))}})
	location(r.Header, "")
}
