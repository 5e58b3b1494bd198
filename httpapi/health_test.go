package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestReadyzHidesCause: /readyz needs no key, so when the database is
// missing or unmigrated it says only "not ready" (503); the cause goes to
// the log.
func TestReadyzHidesCause(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(ledgertest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/ledgerd_readyz_no_such_db"
	for name, tc := range map[string]struct{ url, cause string }{
		"database missing": {u.String(), "ledgerd_readyz_no_such_db"},
		"schema missing":   {ledgertest.NewEmptyDatabase(t), "ledgerd migrate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, err := postgres.Open(t.Context(), postgres.Config{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var log syncBuffer
			srv := httptest.NewServer(httpapi.NewServer(db, nil, httpapi.Config{Logger: slog.New(slog.NewJSONHandler(&log, nil))}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := &ledgertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
			if err := checkSafetyHeaders(r.Header); err != nil {
				t.Fatal(err)
			}
			if r.Status != 503 || str(r.JSON(), "detail") != "not ready" {
				t.Fatalf("readyz: %d %s, want 503 with detail \"not ready\"", r.Status, body)
			}
			for _, leak := range []string{tc.cause, "database", "schema", "postgres", "ledgerd_"} {
				if strings.Contains(strings.ToLower(string(body)), leak) {
					t.Fatalf("readyz shows %q to the caller: %s", leak, body)
				}
			}
			if !strings.Contains(log.String(), tc.cause) {
				t.Fatalf("the log does not hold the cause %q: %s", tc.cause, log.String())
			}
		})
	}
}

// TestSafetyHeadersEverywhere: the kinds of answer that do not pass through
// a handler's own writer (404 and 405 on unknown routes, 304, 204, 401,
// HEAD) carry Cache-Control: no-store and nosniff too. (do checks every
// other answer of these tests.)
func TestSafetyHeadersEverywhere(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("hdr")
	c.account(l, "a", "USD", nil)
	c.expect(404, "not_found", "GET", "/nowhere", "", nil)
	c.expect(405, "method_not_allowed", "PUT", "/healthz", "", nil)
	c.expect(401, "unauthorized", "GET", "/v1/ledgers", "", nil)
	etag := c.expect(200, "", "GET", accountsPath(l)+"/a", admin, nil).Header.Get("ETag")
	c.expect(304, "", "GET", accountsPath(l)+"/a", admin, nil, "If-None-Match", etag)
	k := c.expect(201, "", "POST", "/v1/api-keys", admin, map[string]any{"ledger": l, "role": "read"})
	c.expect(204, "", "DELETE", k.Header.Get("Location"), admin, nil)
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		req, _ := http.NewRequest("HEAD", c.e.URL+p, nil)
		if r := send(t, c.e, req); r.Status != 200 || len(r.Body) != 0 {
			t.Fatalf("HEAD %s: %d %q", p, r.Status, r.Body)
		}
	}
}
