package httpapi_test

import (
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func monitorsPath(l string) string { return "/v1/ledgers/" + l + "/monitors" }

// TestMonitorsAPI walks the monitors API: a write key creates (201,
// Location), a read key lists and gets, a write key deletes; recipients
// are de-duplicated.
func TestMonitorsAPI(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("mon-api")
	c.account(l, "alice", "USD", nil)
	write, read := c.key(l, "write"), c.key(l, "read")
	r := c.expect(201, "", "POST", monitorsPath(l), write, map[string]any{"account": "alice",
		"condition":   map[string]any{"field": "available", "operator": "<", "value": -100},
		"email":       []string{"ops@example.com", "ops@example.com", "cfo@example.org"},
		"description": "low balance"})
	m := r.JSON()
	id := str(m, "id")
	if !strings.HasPrefix(id, "mon_") || r.Header.Get("Location") != monitorsPath(l)+"/"+id {
		t.Fatalf("create answered %v (Location %q)", m, r.Header.Get("Location"))
	}
	requireKeys(t, "monitor", m, "id", "account", "condition", "email", "description", "triggers", "last_triggered_at", "created_at")
	cnd := m["condition"].(map[string]any)
	if cnd["field"] != "available" || cnd["operator"] != "<" || num(t, cnd["value"]) != -100 {
		t.Fatalf("condition = %v", cnd)
	}
	if e := m["email"].([]any); len(e) != 2 || e[0] != "ops@example.com" || e[1] != "cfo@example.org" || num(t, m["triggers"]) != 0 || m["last_triggered_at"] != nil {
		t.Fatalf("create answered %v", m)
	}
	if got := c.expect(200, "", "GET", monitorsPath(l)+"/"+id, read, nil).JSON(); compact(t, got) != compact(t, m) {
		t.Fatalf("get answered %v, create %v", got, m)
	}
	// Without e-mail: events only.
	id2 := str(c.expect(201, "", "POST", monitorsPath(l), write, map[string]any{"account": "alice",
		"condition": map[string]any{"field": "posted", "operator": ">=", "value": 5}}).JSON(), "id")
	list := c.walk(monitorsPath(l)+"?limit=1", read)
	if len(list) != 2 {
		t.Fatalf("list walked %d monitors, want 2", len(list))
	}
	c.expect(422, "validation_failed", "GET", monitorsPath(l)+"?account=alice", read, nil)
	c.expect(403, "forbidden", "DELETE", monitorsPath(l)+"/"+id, read, nil)
	c.expect(204, "", "DELETE", monitorsPath(l)+"/"+id, write, nil)
	c.expect(404, "not_found", "GET", monitorsPath(l)+"/"+id, read, nil)
	c.expect(404, "not_found", "DELETE", monitorsPath(l)+"/"+id, write, nil)
	c.expect(200, "", "GET", monitorsPath(l)+"/"+id2, read, nil)
}

// TestMonitorsBadInput: malformed conditions and recipients are 422 with
// a field error, an unknown account 422 account_not_found, a read key 403;
// none of it creates a monitor; another ledger's monitor is not found.
func TestMonitorsBadInput(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("mon-bad")
	other := c.ledger("mon-other")
	c.account(l, "alice", "USD", nil)
	cond := map[string]any{"field": "available", "operator": "<", "value": 0}
	many := make([]string, 11)
	for i := range many {
		many[i] = "u" + string(rune('a'+i)) + "@example.com"
	}
	cases := []struct {
		body  any
		field string
	}{
		{map[string]any{"condition": cond}, "account"},
		{map[string]any{"account": "alice"}, "condition"},
		{map[string]any{"account": "al ice", "condition": cond}, "account"},
		{map[string]any{"account": 5, "condition": cond}, "account"},
		{map[string]any{"account": "alice", "condition": "balance < 0"}, "condition"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "pending", "operator": "<", "value": 0}}, "condition.field"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "posted", "operator": "==", "value": 0}}, "condition.operator"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "posted", "operator": "<", "value": 1.5}}, "condition.value"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "posted", "operator": "<", "value": "10"}}, "condition.value"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "posted", "operator": "<"}}, "condition.value"},
		{map[string]any{"account": "alice", "condition": map[string]any{"field": "posted", "operator": "<", "value": 0, "x": 1}}, "condition.x"},
		{map[string]any{"account": "alice", "condition": cond, "email": "ops@example.com"}, "email"},
		{map[string]any{"account": "alice", "condition": cond, "email": []string{"not an address"}}, "email[0]"},
		{map[string]any{"account": "alice", "condition": cond, "email": []string{"ok@example.com", "Ops <ops@example.com>"}}, "email[1]"},
		{map[string]any{"account": "alice", "condition": cond, "email": []string{"a@example.com\r\nBcc: x@example.com"}}, "email[0]"},
		{map[string]any{"account": "alice", "condition": cond, "email": []string{strings.Repeat("a", 250) + "@example.com"}}, "email[0]"},
		{map[string]any{"account": "alice", "condition": cond, "email": many}, "email"},
		{map[string]any{"account": "alice", "condition": cond, "description": strings.Repeat("d", 513)}, "description"},
		{map[string]any{"account": "alice", "condition": cond, "status": "on"}, "status"},
	}
	for _, tc := range cases {
		r := c.expect(422, "validation_failed", "POST", monitorsPath(l), admin, tc.body)
		if _, ok := fieldErrors(r)[tc.field]; !ok {
			t.Errorf("%v: field errors %s, want one on %q", tc.body, r.Body, tc.field)
		}
	}
	c.expect(422, "account_not_found", "POST", monitorsPath(l), admin, map[string]any{"account": "nobody", "condition": cond})
	// alice is not an account of the other ledger.
	c.expect(422, "account_not_found", "POST", monitorsPath(other), admin, map[string]any{"account": "alice", "condition": cond})
	c.expect(400, "malformed_json", "POST", monitorsPath(l), admin, "{")
	c.expect(403, "forbidden", "POST", monitorsPath(l), c.key(l, "read"), map[string]any{"account": "alice", "condition": cond})
	if d := c.expect(200, "", "GET", monitorsPath(l), admin, nil).JSON()["data"].([]any); len(d) != 0 {
		t.Fatalf("bad input created monitors: %v", d)
	}
	id := str(c.expect(201, "", "POST", monitorsPath(l), c.key(l, "write"), map[string]any{"account": "alice", "condition": cond}).JSON(), "id")
	otherKey := c.key(other, "write")
	c.expect(404, "not_found", "GET", monitorsPath(other)+"/"+id, otherKey, nil)
	c.expect(404, "not_found", "DELETE", monitorsPath(other)+"/"+id, otherKey, nil)
	// A key of another ledger does not see this one at all.
	c.expect(404, "not_found", "GET", monitorsPath(l)+"/"+id, otherKey, nil)
}
