package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// everyRoute gives each served route a concrete path and a well-formed
// body (for the routes that read one). The id of a missing transaction or
// key is used where the route needs one: 422 ranks before the path's 404.
func everyRoute(l string) map[string]struct{ path, body string } {
	const missingTx = "/00000000-0000-7000-8000-000000000000"
	return map[string]struct{ path, body string }{
		"GET /healthz":                                        {"/healthz", ""},
		"GET /readyz":                                         {"/readyz", ""},
		"GET /v1/openapi.json":                                {"/v1/openapi.json", ""},
		"POST /v1/ledgers":                                    {"/v1/ledgers", `{"name":"fresh"}`},
		"GET /v1/ledgers":                                     {"/v1/ledgers", ""},
		"GET /v1/ledgers/{ledger}":                            {"/v1/ledgers/" + l, ""},
		"PATCH /v1/ledgers/{ledger}":                          {"/v1/ledgers/" + l, `{"hot_months":3}`},
		"GET /v1/api-keys":                                    {"/v1/api-keys", ""},
		"DELETE /v1/api-keys/{id}":                            {"/v1/api-keys/nope", ""},
		"PATCH /v1/api-keys/{id}":                             {"/v1/api-keys/nope", `{"rate_limit":null}`},
		"POST /v1/api-keys":                                   {"/v1/api-keys", `{"ledger":"` + l + `","role":"read"}`},
		"POST /v1/ledgers/{ledger}/accounts":                  {accountsPath(l), `{"id":"new","asset":"USD"}`},
		"POST /v1/ledgers/{ledger}/accounts/batch":            {accountsPath(l) + "/batch", `{"accounts":[{"id":"new","asset":"USD"}]}`},
		"GET /v1/ledgers/{ledger}/accounts":                   {accountsPath(l), ""},
		"GET /v1/ledgers/{ledger}/accounts/{account}":         {accountsPath(l) + "/nope", ""},
		"PATCH /v1/ledgers/{ledger}/accounts/{account}":       {accountsPath(l) + "/a", `{"metadata":{"k":"v"}}`},
		"GET /v1/ledgers/{ledger}/accounts/{account}/balance": {accountsPath(l) + "/nope/balance", ""},
		"GET /v1/ledgers/{ledger}/accounts/{account}/entries": {accountsPath(l) + "/nope/entries", ""},
		"POST /v1/ledgers/{ledger}/transactions":              {txPath(l), `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}`},
		"POST /v1/ledgers/{ledger}/transactions/batch":        {txPath(l) + "/batch", `{"transactions":[{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}]}`},
		"GET /v1/ledgers/{ledger}/transactions":               {txPath(l), ""},
		"GET /v1/ledgers/{ledger}/transactions/{id}":          {txPath(l) + missingTx, ""},
		"POST /v1/ledgers/{ledger}/transactions/{id}/post":    {txPath(l) + missingTx + "/post", `{}`},
		"POST /v1/ledgers/{ledger}/transactions/{id}/void":    {txPath(l) + missingTx + "/void", ``},
		"POST /v1/ledgers/{ledger}/transactions/{id}/reverse": {txPath(l) + missingTx + "/reverse", `{}`},
		"GET /v1/ledgers/{ledger}/events":                     {"/v1/ledgers/" + l + "/events", ""},
		"GET /v1/ledgers/{ledger}/audit":                      {"/v1/ledgers/" + l + "/audit", ""},

		"POST /v1/ledgers/{ledger}/monitors":                                  {monitorsPath(l), `{"account":"a","condition":{"field":"posted","operator":"<","value":0}}`},
		"GET /v1/ledgers/{ledger}/monitors":                                   {monitorsPath(l), ""},
		"GET /v1/ledgers/{ledger}/monitors/{id}":                              {monitorsPath(l) + "/nope", ""},
		"DELETE /v1/ledgers/{ledger}/monitors/{id}":                           {monitorsPath(l) + "/nope", ""},
		"GET /v1/ledgers/{ledger}/fraud-rules":                                {"/v1/ledgers/" + l + "/fraud-rules", ""},
		"PUT /v1/ledgers/{ledger}/fraud-rules":                                {"/v1/ledgers/" + l + "/fraud-rules", `{}`},
		"POST /v1/ledgers/{ledger}/webhooks":                                  {hooks(l), `{"url":"https://8.8.8.8/x"}`},
		"GET /v1/ledgers/{ledger}/webhooks":                                   {hooks(l), ""},
		"GET /v1/ledgers/{ledger}/webhooks/{id}":                              {hooks(l) + "/nope", ""},
		"PATCH /v1/ledgers/{ledger}/webhooks/{id}":                            {hooks(l) + "/nope", `{"description":"x"}`},
		"DELETE /v1/ledgers/{ledger}/webhooks/{id}":                           {hooks(l) + "/nope", ""},
		"POST /v1/ledgers/{ledger}/webhooks/{id}/rotate-secret":               {hooks(l) + "/nope/rotate-secret", ""},
		"GET /v1/ledgers/{ledger}/webhooks/{id}/deliveries":                   {hooks(l) + "/nope/deliveries", ""},
		"POST /v1/ledgers/{ledger}/webhooks/{id}/deliveries/{event_id}/retry": {hooks(l) + "/nope/deliveries/evt_x/retry", ""},
	}
}

// TestUnknownQueryParameters: on every route, an unknown query parameter
// is 422 validation_failed naming each one, and changes nothing; it ranks
// before a missing resource in the path (404).
func TestUnknownQueryParameters(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	routes := everyRoute(l)
	for _, r := range httpapi.NewServer(nil, nil, httpapi.Config{}).Routes() {
		if _, ok := routes[r]; !ok {
			t.Fatalf("route %s has no case in everyRoute", r)
		}
	}
	before := c.snapshot(l, badAccounts...)
	for name, rt := range routes {
		t.Run(name, func(t *testing.T) {
			c := c.with(t)
			method := strings.SplitN(name, " ", 2)[0]
			var body any
			if rt.body != "" {
				body = rt.body
			}
			r := c.expect(422, "validation_failed", method, rt.path+"?acount=x&zz%5B1%5D=2&acount=y", admin, body)
			// Each unknown parameter is named once, whatever else the
			// route finds wrong (the DELETE's missing key is a 404 that
			// ranks later).
			got := fields(r)
			for _, want := range []string{"acount", "zz[1]"} {
				if n := countOf(got, want); n != 1 {
					t.Fatalf("errors name %q %d times, want once: %s", want, n, r.Body)
				}
			}
		})
	}
	c.unchanged(l, before)
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestKnownQueryParameters: every parameter a route documents is taken,
// including metadata[key] on the account list.
func TestKnownQueryParameters(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	for _, p := range []string{
		"/v1/ledgers?limit=5&cursor=" + "YQ",
		"/v1/api-keys?ledger=" + l + "&limit=5&cursor=YQ",
		accountsPath(l) + "?prefix=a&metadata%5Bowner%5D=x&limit=5&cursor=YQ",
		accountsPath(l) + "/a/balance?at=2020-01-01T00:00:00Z",
		accountsPath(l) + "/a/entries?from=2020-01-01T00:00:00Z&to=2099-01-01T00:00:00Z&limit=5&cursor=MTow",
		txPath(l) + "?account=a&reference=r&after=0&from=2020-01-01T00:00:00Z&to=2099-01-01T00:00:00Z&limit=5&cursor=MQ",
	} {
		c.expect(200, "", "GET", p, admin, nil)
	}
	// metadata[] with no key inside the brackets is not a filter.
	requireField(t, c.do("GET", accountsPath(l)+"?metadata%5B%5D=x", admin, nil), "metadata[]")
	// A query string that does not parse is named as "query".
	requireField(t, c.do("GET", txPath(l)+"?a=%zz", admin, nil), "query")
}

// TestUnknownQueryParameterPrecedence: 422 comes after 404/405 for the
// route, 401, the ledger's 404, 403, 413, 415 and 400, before the path's
// resource 404, and together with the body's own 422s.
func TestUnknownQueryParameterPrecedence(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	read := c.key(l, "read")
	const q = "?bogus=1"
	before := c.snapshot(l, badAccounts...)
	c.expect(404, "not_found", "GET", "/nowhere"+q, admin, nil)
	c.expect(405, "method_not_allowed", "PUT", accountsPath(l)+q, admin, nil)
	c.expect(401, "unauthorized", "GET", accountsPath(l)+q, "", nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers"+q, "", nil)
	c.expect(404, "not_found", "GET", accountsPath("nope")+q, admin, nil)
	c.expect(403, "forbidden", "POST", accountsPath(l)+q, read, `{"id":"new","asset":"USD"}`)
	c.expect(403, "forbidden", "GET", "/v1/api-keys"+q, read, nil)
	c.expect(413, "payload_too_large", "POST", accountsPath(l)+q, admin, pad(`{"id":"new","asset":"USD"}`, 2<<20))
	c.expect(415, "unsupported_media_type", "POST", accountsPath(l)+q, admin, `{"id":"new","asset":"USD"}`, "Content-Type", "text/plain")
	c.expect(400, "malformed_json", "POST", accountsPath(l)+q, admin, `{"id":`)
	c.expect(400, "malformed_json", "POST", "/v1/ledgers"+q, admin, ``)
	// After 422 come the path's 404 ...
	requireField(t, c.do("GET", accountsPath(l)+"/nope"+q, admin, nil), "bogus")
	requireField(t, c.do("DELETE", "/v1/api-keys/nope"+q, admin, nil), "bogus")
	// ... and the same 422 names the body's field errors too.
	r := c.do("POST", accountsPath(l)+q, admin, `{"id":5,"asset":"USD"}`)
	requireField(t, r, "bogus")
	requireField(t, r, "id")
	// A bad value of a known parameter and an unknown one: the unknown one
	// answers (it is checked before the route looks at its values).
	requireField(t, c.do("GET", txPath(l)+"?limit=5000&acount=a", admin, nil), "acount")
	c.unchanged(l, before)

	// 429 ranks before 422 as well.
	rc := setup(t, ledgertest.Options{RateLimit: 0.001, RateBurst: 1})
	rl := rc.ledger("rlq") // takes the bootstrap key's only token
	rc.expect(429, "rate_limited", "GET", accountsPath(rl)+q, admin, nil)
	if got := fields(rc.do("GET", "/healthz"+q, "", nil)); !slices.Contains(got, "bogus") {
		t.Fatalf("healthz with an unknown parameter names %q", got)
	}
}
