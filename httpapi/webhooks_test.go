package httpapi_test

import (
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func hooks(l string) string { return "/v1/ledgers/" + l + "/webhooks" }

// fieldErrors returns the field names of a 422.
func fieldErrors(r *ledgertest.Response) map[string]string {
	out := map[string]string{}
	errs, _ := r.JSON()["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		msg, _ := m["message"].(string)
		out[f] = msg
	}
	return out
}

// TestWebhookEndpointsAPI walks the endpoints API: create (secret once,
// Location), get and list without the secret, patch, rotate, deliveries,
// delete.
func TestWebhookEndpointsAPI(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := c.ledger("hooks-api")
	r := c.expect(201, "", "POST", hooks(l), admin, map[string]any{"url": "http://127.0.0.1:9/h",
		"event_types": []string{"transaction.posted", "account.created"}, "description": "ops"})
	ep := r.JSON()
	id := str(ep, "id")
	if !strings.HasPrefix(str(ep, "secret"), "whsec_") || ep["status"] != "enabled" || r.Header.Get("Location") != hooks(l)+"/"+id {
		t.Fatalf("create answered %v (Location %q)", ep, r.Header.Get("Location"))
	}
	got := c.expect(200, "", "GET", hooks(l)+"/"+id, admin, nil).JSON()
	if _, ok := got["secret"]; ok || got["description"] != "ops" || len(got["event_types"].([]any)) != 2 {
		t.Fatalf("get answered %v", got)
	}
	list := c.expect(200, "", "GET", hooks(l), admin, nil).JSON()
	if d := list["data"].([]any); len(d) != 1 || d[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list answered %v", list)
	}
	p := c.expect(200, "", "PATCH", hooks(l)+"/"+id, admin, map[string]any{"event_types": nil, "status": "disabled", "description": "x"}).JSON()
	if p["event_types"] != nil || p["status"] != "disabled" || p["description"] != "x" || p["url"] != "http://127.0.0.1:9/h" {
		t.Fatalf("patch answered %v", p)
	}
	s := c.expect(200, "", "POST", hooks(l)+"/"+id+"/rotate-secret", admin, nil).JSON()
	if !strings.HasPrefix(str(s, "secret"), "whsec_") || s["secret"] == ep["secret"] {
		t.Fatalf("rotate answered %v", s)
	}
	d := c.expect(200, "", "GET", hooks(l)+"/"+id+"/deliveries", admin, nil).JSON()
	if len(d["data"].([]any)) != 0 || d["next_cursor"] != nil {
		t.Fatalf("deliveries answered %v", d)
	}
	c.expect(204, "", "DELETE", hooks(l)+"/"+id, admin, nil)
	c.expect(404, "not_found", "GET", hooks(l)+"/"+id, admin, nil)
	c.expect(404, "not_found", "DELETE", hooks(l)+"/"+id, admin, nil)
}

// TestWebhookEndpointsBadInput: bad URLs (private ones included), unknown
// event types and oversized descriptions are 422 with field errors;
// another ledger's endpoints are 404; read and write keys are 403; and
// nothing is created by any of it.
func TestWebhookEndpointsBadInput(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{}) // private addresses refused
	l := c.ledger("hooks-bad")
	other := c.ledger("hooks-other")
	cases := []struct {
		body  any
		field string
	}{
		{map[string]any{}, "url"},
		{map[string]any{"url": "ftp://8.8.8.8/x"}, "url"},
		{map[string]any{"url": "/relative"}, "url"},
		{map[string]any{"url": "https://user:pw@8.8.8.8/x"}, "url"},
		{map[string]any{"url": "http://127.0.0.1/x"}, "url"},
		{map[string]any{"url": "http://localhost/x"}, "url"},
		{map[string]any{"url": "http://10.1.2.3/x"}, "url"},
		{map[string]any{"url": "http://169.254.169.254/latest"}, "url"},
		{map[string]any{"url": "http://[::1]/x"}, "url"},
		{map[string]any{"url": "https://8.8.8.8/" + strings.Repeat("a", 2100)}, "url"},
		{map[string]any{"url": 5}, "url"},
		{map[string]any{"url": "https://8.8.8.8/x", "event_types": []string{"transaction.posted", "nope"}}, "event_types[1]"},
		{map[string]any{"url": "https://8.8.8.8/x", "event_types": []string{}}, "event_types"},
		{map[string]any{"url": "https://8.8.8.8/x", "event_types": "transaction.posted"}, "event_types"},
		{map[string]any{"url": "https://8.8.8.8/x", "description": strings.Repeat("d", 1025)}, "description"},
		{map[string]any{"url": "https://8.8.8.8/x", "status": "enabled"}, "status"},
		{map[string]any{"url": "https://8.8.8.8/x", "secret": "whsec_x"}, "secret"},
	}
	for _, tc := range cases {
		r := c.expect(422, "validation_failed", "POST", hooks(l), admin, tc.body)
		if _, ok := fieldErrors(r)[tc.field]; !ok {
			t.Errorf("%v: field errors %s, want one on %q", tc.body, r.Body, tc.field)
		}
	}
	c.expect(400, "malformed_json", "POST", hooks(l), admin, "{")
	if d := c.expect(200, "", "GET", hooks(l), admin, nil).JSON()["data"].([]any); len(d) != 0 {
		t.Fatalf("bad input created endpoints: %v", d)
	}

	// A public address literal needs no DNS and is accepted.
	id := str(c.expect(201, "", "POST", hooks(other), admin, map[string]any{"url": "https://8.8.8.8/hook"}).JSON(), "id")
	r := c.expect(422, "validation_failed", "PATCH", hooks(other)+"/"+id, admin, map[string]any{"status": "paused", "url": "http://127.0.0.1/"})
	if f := fieldErrors(r); f["status"] == "" || f["url"] == "" {
		t.Errorf("patch field errors %s", r.Body)
	}
	c.expect(422, "validation_failed", "GET", hooks(other)+"/"+id+"/deliveries?status=lost", admin, nil)
	c.expect(422, "validation_failed", "GET", hooks(other)+"/"+id+"/deliveries?after=evt_unknown", admin, nil)
	c.expect(422, "validation_failed", "GET", hooks(other)+"/"+id+"/deliveries?limit=0", admin, nil)

	// Another ledger's endpoint is not found through this ledger, with any
	// method, even by this ledger's admin.
	lAdmin := c.key(l, "admin")
	for _, m := range []struct{ method, path string }{
		{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/rotate-secret"}, {"GET", "/deliveries"},
		{"POST", "/deliveries/evt_x/retry"},
	} {
		var body any
		if m.method == "PATCH" {
			body = map[string]any{"description": "mine now"}
		}
		c.expect(404, "not_found", m.method, hooks(l)+"/"+id+m.path, lAdmin, body)
		c.expect(404, "not_found", m.method, hooks(other)+"/"+id+m.path, lAdmin, body)
	}
	if d := c.expect(200, "", "GET", hooks(other)+"/"+id, admin, nil).JSON(); d["description"] != "" {
		t.Fatalf("endpoint changed through another ledger: %v", d)
	}
	// Write and read keys of the ledger itself: 403.
	for _, role := range []string{"write", "read"} {
		k := c.key(other, role)
		c.expect(403, "forbidden", "GET", hooks(other), k, nil)
		c.expect(403, "forbidden", "POST", hooks(other), k, map[string]any{"url": "https://8.8.8.8/hook"})
		c.expect(403, "forbidden", "POST", hooks(other)+"/"+id+"/rotate-secret", k, nil)
	}
	// The ledger's own admin key may.
	c.expect(200, "", "GET", hooks(other)+"/"+id, c.key(other, "admin"), nil)
}
