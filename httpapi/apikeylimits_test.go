package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// keyID is the id part of a key's secret (ldk_<id>_<secret>).
func keyID(secret string) string { return strings.Split(secret, "_")[1] }

// rateLimitOf is a key object's rate_limit as "per_second/burst", "" for null.
func rateLimitOf(t testing.TB, k map[string]any) string {
	t.Helper()
	v, ok := k["rate_limit"]
	if !ok {
		t.Fatalf("key without rate_limit: %v", k)
	}
	if v == nil {
		return ""
	}
	m, _ := v.(map[string]any)
	requireKeys(t, "rate_limit", m, "per_second", "burst")
	ps, _ := m["per_second"].(json.Number)
	b, _ := m["burst"].(json.Number)
	return ps.String() + "/" + b.String()
}

// TestAPIKeyRateLimit: a key's own limit is set on creation or by PATCH,
// shown by create, list and PATCH, cleared by null, enforced instead of
// the node's default at once on the node that changed it, and audited.
func TestAPIKeyRateLimit(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{RateLimit: 10_000, RateBurst: 10_000})
	l := c.ledger("klim")
	adm := c.key(l, "admin")

	// Created with a limit: 0.001/s with a burst of 3 is three requests.
	r := c.expect(201, "", "POST", "/v1/api-keys", adm, map[string]any{"ledger": l, "role": "write",
		"rate_limit": map[string]any{"per_second": 0.001, "burst": 3}})
	if got := rateLimitOf(t, r.JSON()); got != "0.001/3" {
		t.Fatalf("created key's rate_limit %s", got)
	}
	slow, slowID := str(r.JSON(), "key"), str(r.JSON(), "id")
	for range 3 {
		c.expect(200, "", "GET", "/v1/ledgers/"+l, slow, nil)
	}
	c.expect(429, "rate_limited", "GET", "/v1/ledgers/"+l, slow, nil)

	// Cleared: the node's default (10,000/s) applies again.
	r = c.expect(200, "", "PATCH", "/v1/api-keys/"+slowID, adm, map[string]any{"rate_limit": nil})
	requireKeys(t, "patched key", r.JSON(), "id", "ledger", "role", "created_at", "revoked_at", "rate_limit")
	if got := rateLimitOf(t, r.JSON()); got != "" || str(r.JSON(), "id") != slowID {
		t.Fatalf("cleared key: %s", r.Body)
	}
	for range 20 {
		c.expect(200, "", "GET", "/v1/ledgers/"+l, slow, nil)
	}

	// A key made without a limit shows null, and PATCH lowers it.
	fast := c.key(l, "read")
	fastID := keyID(fast)
	for range 10 {
		c.expect(200, "", "GET", "/v1/ledgers/"+l, fast, nil)
	}
	r = c.expect(200, "", "PATCH", "/v1/api-keys/"+fastID, adm, map[string]any{"rate_limit": map[string]any{"per_second": 0.5, "burst": 2}})
	if got := rateLimitOf(t, r.JSON()); got != "0.5/2" {
		t.Fatalf("patched rate_limit %s", got)
	}
	c.expect(200, "", "GET", "/v1/ledgers/"+l, fast, nil)
	c.expect(200, "", "GET", "/v1/ledgers/"+l, fast, nil)
	c.expect(429, "rate_limited", "GET", "/v1/ledgers/"+l, fast, nil)
	// Raised again: served at once (a changed limit starts a full bucket).
	c.expect(200, "", "PATCH", "/v1/api-keys/"+fastID, adm, map[string]any{"rate_limit": map[string]any{"per_second": 1000, "burst": 50}})
	for range 20 {
		c.expect(200, "", "GET", "/v1/ledgers/"+l, fast, nil)
	}

	// The list shows every key's limit.
	limits := map[string]string{}
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		limits[str(k, "id")] = rateLimitOf(t, k)
	}
	if limits[slowID] != "" || limits[fastID] != "1000/50" || limits[keyID(adm)] != "" {
		t.Fatalf("listed limits %v", limits)
	}

	// Every change is in the ledger's audit log, by whoever made it.
	entries, _ := auditLog(c, l, adm)
	var patches []string
	for _, e := range entries {
		if e.Action == "api_key.patch" {
			if e.Status != 200 || e.Actor != keyID(adm) || e.RequestID == "" {
				t.Fatalf("patch entry %+v", e)
			}
			patches = append(patches, e.Target)
		}
	}
	if want := []string{"/v1/api-keys/" + slowID, "/v1/api-keys/" + fastID, "/v1/api-keys/" + fastID}; !slices.Equal(patches, want) {
		t.Fatalf("audited patches %q, want %q", patches, want)
	}
}

// TestAPIKeyRateLimitRejected: bad limits are 422 with the field's path
// on create and PATCH and change nothing; lesser roles get 403 (audited),
// other ledgers' and unknown keys 404.
func TestAPIKeyRateLimitRejected(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l, other := c.ledger("klimbad"), c.ledger("klimother")
	adm := c.key(l, "admin")
	target := keyID(c.key(l, "write"))
	otherKey := keyID(c.key(other, "read"))

	for _, tc := range []struct {
		name  string
		limit any
		field string
	}{
		{"zero rate", map[string]any{"per_second": 0, "burst": 1}, "rate_limit.per_second"},
		{"negative rate", map[string]any{"per_second": -5, "burst": 1}, "rate_limit.per_second"},
		{"rate too fine", map[string]any{"per_second": 0.0001, "burst": 1}, "rate_limit.per_second"},
		{"four decimals", map[string]any{"per_second": 1.2345, "burst": 1}, "rate_limit.per_second"},
		{"rate too high", map[string]any{"per_second": 2_000_000, "burst": 1}, "rate_limit.per_second"},
		{"rate as string", map[string]any{"per_second": "10", "burst": 1}, "rate_limit.per_second"},
		{"rate null", map[string]any{"per_second": nil, "burst": 1}, "rate_limit.per_second"},
		{"rate missing", map[string]any{"burst": 1}, "rate_limit.per_second"},
		{"zero burst", map[string]any{"per_second": 1, "burst": 0}, "rate_limit.burst"},
		{"fractional burst", map[string]any{"per_second": 1, "burst": 1.5}, "rate_limit.burst"},
		{"burst too high", map[string]any{"per_second": 1, "burst": 1_000_001}, "rate_limit.burst"},
		{"huge burst", `{"rate_limit":{"per_second":1,"burst":99999999999999999999}}`, "rate_limit.burst"},
		{"burst missing", map[string]any{"per_second": 1}, "rate_limit.burst"},
		{"unknown member", map[string]any{"per_second": 1, "burst": 1, "period": 60}, "rate_limit.period"},
		{"duplicate member", `{"rate_limit":{"per_second":1,"burst":1,"burst":2}}`, "rate_limit.burst"},
		{"not an object", 10, "rate_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			patch, create := tc.limit, tc.limit
			if s, ok := tc.limit.(string); ok {
				create = strings.Replace(s, `{"rate_limit"`, `{"ledger":"klimbad","role":"read","rate_limit"`, 1)
			} else {
				patch = map[string]any{"rate_limit": tc.limit}
				create = map[string]any{"ledger": l, "role": "read", "rate_limit": tc.limit}
			}
			requireField(t, c.do("PATCH", "/v1/api-keys/"+target, adm, patch), tc.field)
			requireField(t, c.do("POST", "/v1/api-keys", adm, create), tc.field)
		})
	}
	// Both members wrong: both named in one answer.
	r := c.do("PATCH", "/v1/api-keys/"+target, adm, map[string]any{"rate_limit": map[string]any{"per_second": -1, "burst": "x"}})
	if fs := fields(r); !slices.Equal(slices.Sorted(slices.Values(fs)), []string{"rate_limit.burst", "rate_limit.per_second"}) {
		t.Fatalf("fields %q: %s", fs, r.Body)
	}
	requireField(t, c.do("PATCH", "/v1/api-keys/"+target, adm, map[string]any{}), "rate_limit")
	requireField(t, c.do("PATCH", "/v1/api-keys/"+target, adm, map[string]any{"rate_limit": nil, "role": "admin"}), "role")
	c.expect(400, "malformed_json", "PATCH", "/v1/api-keys/"+target, adm, `{"rate_limit":`)
	c.expect(415, "unsupported_media_type", "PATCH", "/v1/api-keys/"+target, adm, `{"rate_limit":null}`, "Content-Type", "text/plain")

	// Nothing was changed, and no key was created.
	keys := c.walk("/v1/api-keys?ledger="+l, admin)
	if len(keys) != 2 {
		t.Fatalf("%d keys after rejected creations, want 2", len(keys))
	}
	for _, k := range keys {
		if rateLimitOf(t, k) != "" {
			t.Fatalf("a rejected change stuck: %v", k)
		}
	}

	good := map[string]any{"rate_limit": map[string]any{"per_second": 5, "burst": 5}}
	// 404: unknown, malformed, another ledger's (for its admin; the
	// bootstrap key sees it).
	c.expect(404, "not_found", "PATCH", "/v1/api-keys/0000000000000000", adm, good)
	c.expect(404, "not_found", "PATCH", "/v1/api-keys/0000000000000000", admin, good)
	c.expect(404, "not_found", "PATCH", "/v1/api-keys/not-an-id", admin, good)
	c.expect(404, "not_found", "PATCH", "/v1/api-keys/"+otherKey, adm, good)
	// Validation comes before the key is looked up (422 before 404).
	requireField(t, c.do("PATCH", "/v1/api-keys/0000000000000000", admin, map[string]any{"rate_limit": 1}), "rate_limit")

	// 403 for read and write keys, even on themselves, recorded as
	// api_key.patch refusals.
	for _, role := range []string{"read", "write"} {
		k := c.key(l, role)
		c.expect(403, "forbidden", "PATCH", "/v1/api-keys/"+target, k, good)
		c.expect(403, "forbidden", "PATCH", "/v1/api-keys/"+keyID(k), k, good)
	}
	c.expect(401, "unauthorized", "PATCH", "/v1/api-keys/"+target, "", good)
	refused := 0
	entries, _ := auditLog(c, l, adm)
	for _, e := range entries {
		if e.Action == "api_key.patch" {
			if e.Status != 403 {
				t.Fatalf("a patch that changed nothing is audited as %d: %+v", e.Status, e)
			}
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d refused patches audited, want 4", refused)
	}
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		if rateLimitOf(t, k) != "" {
			t.Fatalf("a refused change stuck: %v", k)
		}
	}
	// The bootstrap key may change another ledger's key.
	r = c.expect(200, "", "PATCH", "/v1/api-keys/"+otherKey, admin, good)
	if got := rateLimitOf(t, r.JSON()); got != "5/5" {
		t.Fatalf("bootstrap patch: %s", r.Body)
	}
}
