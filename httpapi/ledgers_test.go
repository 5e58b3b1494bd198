package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestCreateLedger(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})

	r := c.expect(201, "", "POST", "/v1/ledgers", admin, map[string]any{"name": "main-1_x"})
	m := r.JSON()
	requireKeys(t, "ledger", m, "name", "created_at", "last_sequence", "hot_months")
	if str(m, "name") != "main-1_x" || num(t, m["last_sequence"]) != 0 || num(t, m["hot_months"]) != 3 {
		t.Fatalf("created ledger: %s", r.Body)
	}
	requireTime(t, "created_at", m["created_at"])
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}

	got := c.expect(200, "", "GET", "/v1/ledgers/main-1_x", admin, nil).JSON()
	if compact(t, got) != compact(t, m) {
		t.Fatalf("GET answers %v, POST answered %v", got, m)
	}

	c.expect(409, "duplicate_ledger", "POST", "/v1/ledgers", admin, map[string]any{"name": "main-1_x"})
	// The longest name is 63 characters.
	c.expect(201, "", "POST", "/v1/ledgers", admin, map[string]any{"name": "0" + strings.Repeat("z", 62)})

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"uppercase", map[string]any{"name": "Main"}, "name"},
		{"leading dash", map[string]any{"name": "-main"}, "name"},
		{"leading underscore", map[string]any{"name": "_main"}, "name"},
		{"dot", map[string]any{"name": "a.b"}, "name"},
		{"too long", map[string]any{"name": "a" + strings.Repeat("b", 63)}, "name"},
		{"empty", map[string]any{"name": ""}, "name"},
		{"missing", map[string]any{}, "name"},
		{"null", map[string]any{"name": nil}, "name"},
		{"number", map[string]any{"name": 7}, "name"},
		{"unknown member", map[string]any{"name": "ok", "color": "red"}, "color"},
		{"duplicate member", `{"name":"dup1","name":"dup2"}`, "name"},
		{"not an object", `["main"]`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			r := c.do("POST", "/v1/ledgers", admin, tc.body)
			requireField(t, r, tc.field)
		})
	}
	for _, name := range []string{"ok", "dup1", "dup2", "a.b", "main"} {
		c.expect(404, "not_found", "GET", "/v1/ledgers/"+name, admin, nil)
	}
}

func TestCreateLedgerNeedsBootstrapKey(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("own")
	for _, role := range []string{"read", "write", "admin"} {
		k := c.key(l, role)
		c.expect(403, "forbidden", "POST", "/v1/ledgers", k, map[string]any{"name": "by-" + role})
		// 403 comes before 400 and 422.
		c.expect(403, "forbidden", "POST", "/v1/ledgers", k, `{"name":`)
		c.expect(403, "forbidden", "POST", "/v1/ledgers", k, map[string]any{"name": "BAD"})
		c.expect(404, "not_found", "GET", "/v1/ledgers/by-"+role, admin, nil)
	}
	c.expect(401, "unauthorized", "POST", "/v1/ledgers", "", map[string]any{"name": "anon"})
	c.expect(401, "unauthorized", "POST", "/v1/ledgers", "not-the-admin-key-0123456789abcdef0123", map[string]any{"name": "anon"})
	c.expect(404, "not_found", "GET", "/v1/ledgers/anon", admin, nil)
}

func TestGetLedgerLastSequence(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("seq")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	for i := 1; i <= 3; i++ {
		m := c.fund(l, "world", "a", 5, "USD")
		if num(t, m["sequence"]) != int64(i) {
			t.Fatalf("transaction %d has sequence %v", i, m["sequence"])
		}
		if got := c.lastSequence(l); got != int64(i) {
			t.Fatalf("last_sequence %d after %d transactions", got, i)
		}
	}
	read := c.key(l, "read")
	m := c.expect(200, "", "GET", "/v1/ledgers/"+l, read, nil).JSON()
	if num(t, m["last_sequence"]) != 3 || str(m, "name") != l {
		t.Fatalf("GET ledger with a read key: %v", m)
	}
	c.expect(404, "not_found", "GET", "/v1/ledgers/nope", admin, nil)
	c.expect(404, "not_found", "GET", "/v1/ledgers/NOT-A-NAME", admin, nil)
}

func TestHealthReadinessAndOpenAPI(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	h := c.expect(200, "", "GET", "/healthz", "", nil)
	if str(h.JSON(), "status") == "" {
		t.Fatalf("healthz: %s", h.Body)
	}
	c.expect(200, "", "GET", "/readyz", "", nil)

	r := c.expect(200, "", "GET", "/v1/openapi.json", "", nil)
	var doc map[string]any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	if _, ok := doc["paths"].(map[string]any); !ok {
		t.Fatalf("openapi.json has no paths object")
	}
	// A key is not needed, and a bad one does not hurt.
	c.expect(200, "", "GET", "/v1/openapi.json", "bogus", nil)
	c.expect(200, "", "GET", "/healthz", "bogus", nil)

	// Every answer carries a Request-Id, and they differ.
	a := c.do("GET", "/healthz", "", nil).Header.Get("Request-Id")
	b := c.do("GET", "/nowhere", "", nil).Header.Get("Request-Id")
	if a == b {
		t.Fatalf("two requests share Request-Id %q", a)
	}
}

// TestUnknownRouteAndWrongMethod: both are answered first, before any
// authentication, as problem+json with a code.
func TestUnknownRouteAndWrongMethod(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("routes")
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nowhere", 404, "not_found", ""},
		{"GET", "/v1", 404, "not_found", ""},
		{"GET", "/v1/ledgers/" + l + "/nothing", 404, "not_found", ""},
		{"POST", "/v1/ledgers/" + l + "/transactions/x/y/z", 404, "not_found", ""},
		{"GET", "/v2/ledgers/" + l, 404, "not_found", ""},
		{"DELETE", "/v1/ledgers/" + l, 405, "method_not_allowed", "GET, PATCH"},
		{"PUT", "/v1/ledgers/" + l + "/accounts/a", 405, "method_not_allowed", "GET, PATCH"},
		{"DELETE", "/v1/ledgers/" + l + "/transactions", 405, "method_not_allowed", "GET, POST"},
		{"PATCH", "/v1/ledgers/" + l + "/transactions/batch", 405, "method_not_allowed", "GET, POST"},
		{"DELETE", "/v1/ledgers", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"PATCH", "/v1/api-keys", 405, "method_not_allowed", "GET, POST"},
		{"GET", "/v1/api-keys/abc", 405, "method_not_allowed", "PATCH, DELETE"},
	} {
		for _, key := range []string{"", "bogus", admin} {
			r := c.do(tc.method, tc.path, key, nil)
			if r.Status != tc.status || r.Code() != tc.code {
				t.Errorf("%s %s (key %q): %d %s, want %d %s", tc.method, tc.path, key, r.Status, r.Body, tc.status, tc.code)
			}
			if tc.allow != "" && r.Header.Get("Allow") != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, r.Header.Get("Allow"), tc.allow)
			}
		}
	}
}

// TestListLedgers: the bootstrap key lists every ledger, a scoped key only
// its own, in name order with keyset pages and fresh last_sequence.
func TestListLedgers(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	names := []string{"lb", "la", "l-c", "l_d", "l0"}
	for _, n := range names {
		c.ledger(n)
	}
	c.account("la", "world", "USD", nil)
	c.account("la", "a", "USD", nil)
	c.fund("la", "world", "a", 5, "USD")
	c.fund("la", "world", "a", 6, "USD")

	all := c.walk("/v1/ledgers?limit=2", admin)
	want := slices.Clone(names)
	slices.Sort(want) // bytewise: "l-c" < "l0" < "l_d" < "la" < "lb"
	var got []string
	for _, l := range all {
		requireKeys(t, "ledger", l, "name", "created_at", "last_sequence", "hot_months")
		requireTime(t, "created_at", l["created_at"])
		got = append(got, str(l, "name"))
		wantSeq := int64(0)
		if str(l, "name") == "la" {
			wantSeq = 2
		}
		if n := num(t, l["last_sequence"]); n != wantSeq {
			t.Fatalf("%s: last_sequence %d, want %d", str(l, "name"), n, wantSeq)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ledgers %q, want %q", got, want)
	}
	// The default page holds them all.
	m := c.expect(200, "", "GET", "/v1/ledgers", admin, nil).JSON()
	if len(m["data"].([]any)) != len(names) || m["next_cursor"] != nil {
		t.Fatalf("default page: %v", m)
	}

	for _, role := range []string{"read", "write", "admin"} {
		k := c.key("lb", role)
		m := c.expect(200, "", "GET", "/v1/ledgers", k, nil).JSON()
		data := m["data"].([]any)
		if len(data) != 1 || str(data[0].(map[string]any), "name") != "lb" || m["next_cursor"] != nil {
			t.Fatalf("%s key of lb sees %v", role, m)
		}
	}

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%21%21"} {
		requireField(t, c.do("GET", "/v1/ledgers?"+q, admin, nil), strings.SplitN(q, "=", 2)[0])
	}
	c.expect(200, "", "GET", "/v1/ledgers?limit=1000", admin, nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers", "", nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers", "bogus", nil)
}

// PATCH of a ledger sets its retention policy (hot_months): admin keys of
// the ledger only, 1 to 1200, audited; GET shows it.
func TestPatchLedgerHotMonths(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("retained")
	path := "/v1/ledgers/" + l
	r := c.expect(200, "", "PATCH", path, c.key(l, "admin"), map[string]any{"hot_months": 12})
	if num(t, r.JSON()["hot_months"]) != 12 {
		t.Fatalf("PATCH answered %s", r.Body)
	}
	if got := c.expect(200, "", "GET", path, admin, nil).JSON(); num(t, got["hot_months"]) != 12 {
		t.Fatalf("GET after PATCH: %v", got)
	}
	c.expect(403, "forbidden", "PATCH", path, c.key(l, "write"), map[string]any{"hot_months": 1})
	other := c.ledger("retained-other")
	c.expect(404, "not_found", "PATCH", path, c.key(other, "admin"), map[string]any{"hot_months": 1})
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"zero", map[string]any{"hot_months": 0}, "hot_months"},
		{"too many", map[string]any{"hot_months": 1201}, "hot_months"},
		{"fraction", map[string]any{"hot_months": 1.5}, "hot_months"},
		{"string", map[string]any{"hot_months": "3"}, "hot_months"},
		{"missing", map[string]any{}, "hot_months"},
		{"unknown member", map[string]any{"hot_months": 3, "name": "x"}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireField(t, c.with(t).do("PATCH", path, admin, tc.body), tc.field)
		})
	}
	if got := c.expect(200, "", "GET", path, admin, nil).JSON(); num(t, got["hot_months"]) != 12 {
		t.Fatalf("a refused PATCH changed the ledger: %v", got)
	}
	audit := c.expect(200, "", "GET", path+"/audit", admin, nil).Body
	if !strings.Contains(string(audit), `"ledger.patch"`) {
		t.Fatalf("audit log has no ledger.patch entry: %s", audit)
	}
}
