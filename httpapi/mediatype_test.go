package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestUnsupportedMediaType: a body declared as anything but application/json
// is 415 unsupported_media_type on every route that reads one, before the
// body is parsed, and changes nothing.
func TestUnsupportedMediaType(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	before := c.snapshot(l, badAccounts...)
	for _, rt := range writeRoutes(l) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			c := c.with(t)
			for _, ct := range []string{
				"text/plain",
				"application/x-www-form-urlencoded",
				"multipart/form-data; boundary=x",
				"application/problem+json",
				"application/merge-patch+json",
				"application/vnd.api+json",
				"application/json; charset=iso-8859-1",
				"application/json; charset", // does not parse
				"json",
			} {
				r := c.expect(415, "unsupported_media_type", rt.method, rt.path, admin, rt.body, "Content-Type", ct)
				if !strings.Contains(str(r.JSON(), "detail"), "application/json") {
					t.Fatalf("%s: detail does not say what to send: %s", ct, r.Body)
				}
				// 415 is checked before the body is parsed.
				c.expect(415, "unsupported_media_type", rt.method, rt.path, admin, `{"id":`, "Content-Type", ct)
			}
			// The detail echoes a bounded part of what was sent.
			r := c.expect(415, "unsupported_media_type", rt.method, rt.path, admin, rt.body, "Content-Type", "text/"+strings.Repeat("x", 4000))
			if d := str(r.JSON(), "detail"); len(d) > 200 {
				t.Fatalf("detail of %d bytes echoes the whole header", len(d))
			}
			// What ranks before it still answers first.
			c.expect(401, "unauthorized", rt.method, rt.path, "", rt.body, "Content-Type", "text/plain")
			c.expect(413, "payload_too_large", rt.method, rt.path, admin, pad(rt.body, 17<<20), "Content-Type", "text/plain")
		})
	}
	c.unchanged(l, before)
}

// TestJSONMediaTypes: application/json with a UTF-8 charset, in any case,
// and a body that declares no type at all, are read as JSON.
func TestJSONMediaTypes(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	for i, ct := range []string{
		"application/json",
		"application/json; charset=utf-8",
		"Application/JSON; Charset=UTF-8",
		"application/json;charset=\"utf-8\"",
		"", // declared empty: none
	} {
		name := "mt" + string(rune('a'+i))
		c.expect(201, "", "POST", "/v1/ledgers", admin, map[string]any{"name": name}, "Content-Type", ct)
	}
	// No Content-Type header at all.
	req, err := http.NewRequest("POST", c.e.URL+"/v1/ledgers", strings.NewReader(`{"name":"bare"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	if r := send(t, c.e, req); r.Status != 201 {
		t.Fatalf("no Content-Type: %d %s", r.Status, r.Body)
	}
	// An empty body is no body: the actions read it as {} whatever type
	// it claims, so a void of a missing hold is its 404, not a 415.
	l := c.ledger("mtvoid")
	c.expect(404, "not_found", "POST", txPath(l)+"/00000000-0000-7000-8000-000000000000/void", admin, "",
		"Content-Type", "application/x-www-form-urlencoded")
}
