package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// badInput is a ledger with accounts for the tests of this file.
func badInput(t *testing.T, o ledgertest.Options) (client, string) {
	c := setup(t, o)
	l := c.ledger("bad")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	c.account(l, "b", "USD", ledgertest.Int64(0))
	c.account(l, "eur", "EUR", nil)
	c.fund(l, "world", "a", 100, "USD")
	return c, l
}

var badAccounts = []string{"world", "a", "b", "eur", "x", "new"}

// writeRoutes are the routes that take a body, with a valid body each.
func writeRoutes(l string) []struct{ method, path, body string } {
	return []struct{ method, path, body string }{
		{"POST", txPath(l), `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}`},
		{"POST", txPath(l) + "/batch", `{"transactions":[{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}]}`},
		{"POST", accountsPath(l), `{"id":"new","asset":"USD"}`},
		{"POST", accountsPath(l) + "/batch", `{"accounts":[{"id":"new","asset":"USD"}]}`},
		{"PATCH", accountsPath(l) + "/a", `{"metadata":{"k":"v"}}`},
		{"POST", "/v1/ledgers", `{"name":"new"}`},
		{"POST", "/v1/api-keys", `{"ledger":"bad","role":"read"}`},
	}
}

func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	for _, rt := range writeRoutes(l) {
		valid := rt.body
		for _, tc := range []struct {
			name string
			body []byte
		}{
			{"empty", nil},
			{"white space only", []byte(" \n\t ")},
			{"truncated", []byte(valid[:len(valid)-1])},
			{"truncated in a string", []byte(valid[:8])},
			{"trailing garbage", []byte(valid + "x")},
			{"two values", []byte(valid + valid)},
			{"trailing comma", []byte(valid[:len(valid)-1] + ",}")},
			{"single quotes", []byte(strings.ReplaceAll(valid, `"`, `'`))},
			{"unquoted member", []byte(`{id:"x"}`)},
			{"invalid UTF-8", []byte(strings.Replace(valid, `"`, "\"\xff", 1))},
			{"invalid UTF-8 outside strings", append([]byte(valid), 0xc3)},
			{"overlong UTF-8", []byte(strings.Replace(valid, `"`, "\"\xc0\xaf", 1))},
			{"UTF-16 surrogate in UTF-8", []byte(strings.Replace(valid, `"`, "\"\xed\xa0\x80", 1))},
			{"control character in a string", []byte(strings.Replace(valid, `"`, "\"\x01", 1))},
			{"bad escape", []byte(strings.Replace(valid, `"`, `"\x`, 1))},
			{"leading zero", []byte(strings.Replace(valid, `{"`, `{"x":01,"`, 1))},
			{"NaN", []byte(strings.Replace(valid, `{"`, `{"x":NaN,"`, 1))},
			{"hex number", []byte(strings.Replace(valid, `{"`, `{"x":0x1,"`, 1))},
			{"plus sign", []byte(strings.Replace(valid, `{"`, `{"x":+1,"`, 1))},
			{"bare fraction", []byte(strings.Replace(valid, `{"`, `{"x":.5,"`, 1))},
			{"unquoted word", []byte(strings.Replace(valid, `{"`, `{"x":nul,"`, 1))},
			{"comment", []byte("/* c */" + valid)},
			{"BOM", append([]byte("\xef\xbb\xbf"), valid...)},
			{"NUL byte", append([]byte(valid), 0)},
		} {
			t.Run(rt.method+" "+rt.path+"/"+tc.name, func(t *testing.T) {
				c := c.with(t)
				before := c.snapshot(l, badAccounts...)
				r := c.expect(400, "malformed_json", rt.method, rt.path, admin, tc.body, "Idempotency-Key", "k-"+tc.name)
				if len(fields(r)) != 0 {
					t.Fatalf("malformed_json with field errors: %s", r.Body)
				}
				c.unchanged(l, before)
			})
		}
	}
	// A malformed body is not stored under its key: the key still works.
	c.expect(400, "malformed_json", "POST", txPath(l), admin, `{`, "Idempotency-Key", "after-400")
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "after-400")
}

func TestTransactionValidation(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	p := func(amount string) string {
		return `{"postings":[{"source":"world","destination":"a","amount":` + amount + `,"asset":"USD"}]}`
	}
	many := func(n int) string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = `{"source":"world","destination":"a","amount":1,"asset":"USD"}`
		}
		return `{"postings":[` + strings.Join(ps, ",") + `]}`
	}
	md := func(n, keyLen, valLen int) string {
		kv := make([]string, n)
		for i := range kv {
			k := fmt.Sprintf("%03d", i) + strings.Repeat("k", max(keyLen-3, 0))
			kv[i] = fmt.Sprintf("%q:%q", k[:max(keyLen, 1)], strings.Repeat("v", valLen))
		}
		return `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}],"metadata":{` + strings.Join(kv, ",") + `}}`
	}
	one := `{"source":"world","destination":"a","amount":1,"asset":"USD"}`
	for _, tc := range []struct {
		name  string
		body  string
		field string
	}{
		{"amount string", p(`"10"`), "postings[0].amount"},
		{"amount fraction", p(`1.5`), "postings[0].amount"},
		{"amount integral float", p(`1.0`), "postings[0].amount"},
		{"amount exponent", p(`1e3`), "postings[0].amount"},
		{"amount capital exponent", p(`1E3`), "postings[0].amount"},
		{"amount 2^63", p(`9223372036854775808`), "postings[0].amount"},
		{"amount huge", p(`123456789012345678901234567890`), "postings[0].amount"},
		{"amount zero", p(`0`), "postings[0].amount"},
		{"amount negative zero", p(`-0`), "postings[0].amount"},
		{"amount negative", p(`-5`), "postings[0].amount"},
		{"amount -2^63", p(`-9223372036854775808`), "postings[0].amount"},
		{"amount null", p(`null`), "postings[0].amount"},
		{"amount bool", p(`true`), "postings[0].amount"},
		{"amount array", p(`[1]`), "postings[0].amount"},
		{"amount missing", `{"postings":[{"source":"world","destination":"a","asset":"USD"}]}`, "postings[0].amount"},
		{"source missing", `{"postings":[{"destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"source null", `{"postings":[{"source":null,"destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"source empty", `{"postings":[{"source":"","destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"source number", `{"postings":[{"source":1,"destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"source bad pattern", `{"postings":[{"source":"-world","destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"source too long", `{"postings":[{"source":"` + strings.Repeat("w", 129) + `","destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"destination missing", `{"postings":[{"source":"world","amount":1,"asset":"USD"}]}`, "postings[0].destination"},
		{"destination bad pattern", `{"postings":[{"source":"world","destination":"a b","amount":1,"asset":"USD"}]}`, "postings[0].destination"},
		{"destination object", `{"postings":[{"source":"world","destination":{},"amount":1,"asset":"USD"}]}`, "postings[0].destination"},
		{"source equals destination", `{"postings":[{"source":"a","destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].destination"},
		{"asset missing", `{"postings":[{"source":"world","destination":"a","amount":1}]}`, "postings[0].asset"},
		{"asset lowercase", `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"usd"}]}`, "postings[0].asset"},
		{"asset too long", `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"ABCDEFGHIJKLMNOPQ"}]}`, "postings[0].asset"},
		{"asset number", `{"postings":[{"source":"world","destination":"a","amount":1,"asset":840}]}`, "postings[0].asset"},
		{"posting unknown member", `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD","memo":"x"}]}`, "postings[0].memo"},
		{"posting duplicate member", `{"postings":[{"source":"world","destination":"a","amount":1,"amount":2,"asset":"USD"}]}`, "postings[0].amount"},
		{"posting not an object", `{"postings":[1]}`, "postings[0]"},
		{"second posting", `{"postings":[` + one + `,{"source":"world","destination":"a","amount":0,"asset":"USD"}]}`, "postings[1].amount"},
		{"postings missing", `{}`, "postings"},
		{"postings null", `{"postings":null}`, "postings"},
		{"postings empty", `{"postings":[]}`, "postings"},
		{"postings object", `{"postings":` + one + `}`, "postings"},
		{"65 postings", many(65), "postings"},
		{"1000 postings", many(1000), "postings"},
		{"unknown member", `{"postings":[` + one + `],"memo":"x"}`, "memo"},
		{"idempotency_key outside a batch", `{"postings":[` + one + `],"idempotency_key":"k"}`, "idempotency_key"},
		{"duplicate member", `{"postings":[` + one + `],"postings":[` + one + `]}`, "postings"},
		{"body an array", `[` + one + `]`, "body"},
		{"body a number", `1`, "body"},
		{"body null", `null`, "body"},
		{"reference 256", `{"postings":[` + one + `],"reference":"` + strings.Repeat("r", 256) + `"}`, "reference"},
		{"reference 256 characters", `{"postings":[` + one + `],"reference":"` + strings.Repeat("é", 256) + `"}`, "reference"},
		{"reference number", `{"postings":[` + one + `],"reference":12}`, "reference"},
		{"metadata 65 keys", md(65, 4, 1), "metadata"},
		{"metadata key 65 bytes", md(1, 65, 1), "metadata.000" + strings.Repeat("k", 13)},
		{"metadata value 513 bytes", md(1, 4, 513), "metadata.000k"},
		{"metadata value number", `{"postings":[` + one + `],"metadata":{"k":1}}`, "metadata.k"},
		{"metadata value null", `{"postings":[` + one + `],"metadata":{"k":null}}`, "metadata.k"},
		{"metadata value bool", `{"postings":[` + one + `],"metadata":{"k":true}}`, "metadata.k"},
		{"metadata not an object", `{"postings":[` + one + `],"metadata":["k"]}`, "metadata"},
		{"metadata duplicate key", `{"postings":[` + one + `],"metadata":{"k":"1","k":"2"}}`, "metadata.k"},
		{"pending not a bool", `{"postings":[` + one + `],"pending":"true"}`, "pending"},
		{"pending_timeout without pending", `{"postings":[` + one + `],"pending_timeout_seconds":60}`, "pending_timeout_seconds"},
		{"pending_timeout with pending false", `{"postings":[` + one + `],"pending":false,"pending_timeout_seconds":60}`, "pending_timeout_seconds"},
		{"pending_timeout 0", `{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":0}`, "pending_timeout_seconds"},
		{"pending_timeout negative", `{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":-1}`, "pending_timeout_seconds"},
		{"pending_timeout too big", `{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":2592001}`, "pending_timeout_seconds"},
		{"pending_timeout fraction", `{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":1.5}`, "pending_timeout_seconds"},
		{"pending_timeout string", `{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":"60"}`, "pending_timeout_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, badAccounts...)
			r := c.do("POST", txPath(l), admin, tc.body, "Idempotency-Key", "val-"+tc.name)
			requireField(t, r, tc.field)
			c.unchanged(l, before)
		})
	}

	// Every problem of a request at once.
	r := c.do("POST", txPath(l), admin, `{"postings":[{"source":"a","destination":"a","amount":"1","asset":"usd","x":1},{}],"reference":1,"y":2}`)
	for _, f := range []string{"postings[0].destination", "postings[0].amount", "postings[0].asset", "postings[0].x",
		"postings[1].source", "postings[1].destination", "postings[1].amount", "postings[1].asset", "reference", "y"} {
		requireField(t, r, f)
	}

	// The limits themselves are accepted.
	for _, body := range []string{
		many(64),
		md(64, 64, 512),
		`{"postings":[` + one + `],"reference":"` + strings.Repeat("r", 255) + `"}`,
		`{"postings":[` + one + `],"reference":"` + strings.Repeat("é", 255) + `"}`, // characters, not bytes
		`{"postings":[` + one + `],"reference":"` + strings.Repeat("✓", 255) + `"}`,
		`{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":1}`,
		`{"postings":[` + one + `],"pending":true,"pending_timeout_seconds":2592000}`,
		`{"postings":[` + one + `],"pending":false}`,
		`{"postings":[{"source":"world","destination":"a","amount":9223372036854775807,"asset":"USD"}]}`,
		`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD","amount":null}]}`,
		` {"postings" : [ {"asset":"USD" , "amount" : 1 , "destination":"b","source":"a"} ] } `,
	} {
		if r := c.do("POST", txPath(l), admin, body); r.Status != 201 && r.Code() != "insufficient_funds" && r.Code() != "validation_failed" {
			t.Fatalf("%.80s: %d %s", body, r.Status, r.Body)
		} else if r.Code() == "validation_failed" && !strings.Contains(body, `"amount":null`) && !strings.Contains(string(r.Body), "overflow") {
			t.Fatalf("%.80s: %s", body, r.Body)
		}
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	before := c.snapshot(l, badAccounts...)
	for _, key := range []string{strings.Repeat("k", 256), strings.Repeat("k", 1000), "tab\tinside"} {
		r := c.do("POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", key)
		requireField(t, r, "Idempotency-Key")
		r = c.do("POST", accountsPath(l), admin, map[string]any{"id": "new", "asset": "USD"}, "Idempotency-Key", key)
		requireField(t, r, "Idempotency-Key")
	}
	c.unchanged(l, before)
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", strings.Repeat("k", 255))
	c.expect(200, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", strings.Repeat("k", 255))
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "k")
	// Lengths are in characters, not bytes.
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", strings.Repeat("é", 255))
	requireField(t, c.do("POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", strings.Repeat("é", 256)), "Idempotency-Key")
	// Any printable UTF-8 is a key.
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "clé-✓")
	c.expect(200, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "clé-✓")

	// Two Idempotency-Key headers are one too many.
	req, _ := http.NewRequest("POST", c.e.URL+txPath(l), strings.NewReader(`{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Add("Idempotency-Key", "one")
	req.Header.Add("Idempotency-Key", "two")
	requireField(t, send(t, c.e, req), "Idempotency-Key")
}

// send sends a hand-made request with do's checks.
func send(t testing.TB, e *ledgertest.Env, req *http.Request) *ledgertest.Response {
	t.Helper()
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &ledgertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if err := checkAnswer(r); err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

// pad returns a valid JSON object body of exactly n bytes: body with
// white space inserted before its closing brace.
func pad(body string, n int) []byte {
	b := []byte(body[:len(body)-1])
	b = append(b, bytes.Repeat([]byte(" "), n-len(body))...)
	return append(b, '}')
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	const single, batch = 1 << 20, 16 << 20
	for _, rt := range writeRoutes(l) {
		limit := single
		if strings.HasSuffix(rt.path, "/batch") {
			limit = batch
		}
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, badAccounts...)
			for _, body := range [][]byte{pad(rt.body, limit+1), bytes.Repeat([]byte("x"), limit+1), pad(rt.body, limit+4096)} {
				c.expect(413, "payload_too_large", rt.method, rt.path, admin, body)
				// Without a Content-Length (chunked), too.
				req, _ := http.NewRequest(rt.method, c.e.URL+rt.path, io.MultiReader(bytes.NewReader(body)))
				req.Header.Set("Authorization", "Bearer "+admin)
				if r := send(t, c.e, req); r.Status != 413 || r.Code() != "payload_too_large" {
					t.Fatalf("chunked %d bytes: %d %s", len(body), r.Status, r.Body)
				}
			}
			// 413 comes before 400 and 422.
			c.expect(413, "payload_too_large", rt.method, rt.path, admin, append([]byte(`{"bogus":`), bytes.Repeat([]byte(" "), limit)...))
			c.unchanged(l, before)
			// Exactly at the limit is not too large.
			r := c.do(rt.method, rt.path, admin, pad(rt.body, limit))
			if r.Status == 413 || r.Status == 400 {
				t.Fatalf("%d bytes: %d %s", limit, r.Status, r.Body)
			}
		})
	}
	// A batch body between the two limits is fine.
	var items []string
	for i := 0; len(strings.Join(items, ",")) < 2<<20; i++ {
		pad := strings.Repeat("p", 500)
		items = append(items, fmt.Sprintf(`{"postings":[{"source":"world","destination":"b","amount":1,"asset":"USD"}],"metadata":{"i":"%d","p1":"%s","p2":"%s","p3":"%s","p4":"%s"}}`, i, pad, pad, pad, pad))
	}
	if len(items) > 1000 {
		t.Fatalf("%d items exceed the default batch limit", len(items))
	}
	r := c.expect(200, "", "POST", txPath(l)+"/batch", admin, `{"transactions":[`+strings.Join(items, ",")+`]}`)
	if n := len(r.JSON()["results"].([]any)); n != len(items) {
		t.Fatalf("%d results for %d items", n, len(items))
	}
}

// TestPrecedence checks the order of docs/api.md §Precedence: route 404/405 → 401 → ledger 404
// → 403 → (429, see ratelimit_test.go) → 413 → 400 → 422 → resource 404 →
// idempotency → business rules; and that no rejection changes anything.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	other := c.ledger("other")
	read, write, otherAdmin := c.key(l, "read"), c.key(l, "write"), c.key(other, "admin")
	revoked := c.key(l, "admin")
	for _, k := range c.walk("/v1/api-keys?ledger="+l, admin) {
		if str(k, "role") == "admin" {
			c.expect(204, "", "DELETE", "/v1/api-keys/"+str(k, "id"), admin, nil)
		}
	}
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "used")
	huge := append([]byte(`{"x":`), bytes.Repeat([]byte("["), 2<<20)...)
	badValid := `{"postings":[{"source":"world","destination":"a","amount":"1","asset":"USD"}]}`
	poor := tx(posting("b", "world", 1, "USD")) // b has nothing
	missing := tx(posting("world", "nobody", 1, "USD"))

	for _, tc := range []struct {
		name         string
		method, path string
		key          string
		body         any
		headers      []string
		status       int
		code         string
	}{
		{"route before auth", "GET", "/v1/ledgers/" + l + "/nope", "", nil, nil, 404, "not_found"},
		{"method before auth", "PUT", txPath(l), "", huge, nil, 405, "method_not_allowed"},
		{"401 before ledger 404", "POST", txPath("nope"), "", huge, nil, 401, "unauthorized"},
		{"revoked key is 401", "POST", txPath(l), revoked, tx(posting("world", "a", 1, "USD")), nil, 401, "unauthorized"},
		{"revoked key before ledger 404", "GET", "/v1/ledgers/nope", revoked, nil, nil, 401, "unauthorized"},
		{"unknown ledger before 403", "POST", txPath("nope"), read, huge, nil, 404, "not_found"},
		{"other ledger before 403", "POST", txPath(l), c.key(other, "read"), huge, nil, 404, "not_found"},
		{"other ledger's admin before 413", "POST", txPath(l), otherAdmin, huge, nil, 404, "not_found"},
		{"invalid ledger name", "GET", "/v1/ledgers/" + strings.Repeat("x", 100), read, nil, nil, 404, "not_found"},
		{"403 before 413", "POST", txPath(l), read, huge, nil, 403, "forbidden"},
		{"403 before 400", "POST", accountsPath(l), read, `{`, nil, 403, "forbidden"},
		{"413 before 400", "POST", txPath(l), write, huge, nil, 413, "payload_too_large"},
		{"400 before 422 (bad key header)", "POST", txPath(l), write, `{"postings":`, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "malformed_json"},
		{"422 before resource 404", "PATCH", accountsPath(l) + "/nobody", write, `{"metadata":{"k":1}}`, nil, 422, "validation_failed"},
		{"422 before idempotency", "POST", txPath(l), write, badValid, []string{"Idempotency-Key", "used"}, 422, "validation_failed"},
		{"idempotency before business", "POST", txPath(l), write, poor, []string{"Idempotency-Key", "used"}, 422, "idempotency_key_reused"},
		{"idempotency before account_not_found", "POST", txPath(l), write, missing, []string{"Idempotency-Key", "used"}, 422, "idempotency_key_reused"},
		{"resource 404 (malformed transaction id)", "GET", txPath(l) + "/12345", read, nil, nil, 404, "not_found"},
		{"401 before malformed transaction id", "GET", txPath(l) + "/12345", "", nil, nil, 401, "unauthorized"},
		{"business", "POST", txPath(l), write, poor, nil, 422, "insufficient_funds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, badAccounts...)
			beforeOther := c.snapshot(other)
			c.expect(tc.status, tc.code, tc.method, tc.path, tc.key, tc.body, tc.headers...)
			c.unchanged(l, before)
			c.unchanged(other, beforeOther)
		})
	}
}

// TestOddInput: values that are valid JSON and valid HTTP but that
// PostgreSQL cannot store or compare (U+0000, invalid UTF-8 in query
// strings, paths and headers, cursors the API never issued) are answered
// as bad input or as "nothing matches" — never with a 5xx — and change
// nothing.
func TestOddInput(t *testing.T) {
	t.Parallel()
	c, l := badInput(t, ledgertest.Options{})
	before := c.snapshot(l, badAccounts...)
	good := `{"source":"world","destination":"a","amount":1,"asset":"USD"}`
	empty := `{"data":[],"next_cursor":null}`
	for _, tc := range []struct {
		method, path string
		body         any
		headers      []string
		status       int
		field        string // for 422; for 200, the exact body
	}{
		{"POST", txPath(l), `{"postings":[` + good + `],"reference":"nul\u0000ref"}`, nil, 422, "reference"},
		{"POST", txPath(l), `{"postings":[` + good + `],"metadata":{"k":"nul\u0000value"}}`, nil, 422, "metadata.k"},
		{"POST", txPath(l), `{"postings":[` + good + `],"metadata":{"nul\u0000key":"v"}}`, nil, 422, "metadata.nul\x00key"},
		{"POST", txPath(l), tx(posting("world", "a", 1, "USD")), []string{"Idempotency-Key", "key\xff\xfe"}, 422, "Idempotency-Key"},
		{"POST", txPath(l) + "/batch", `{"transactions":[{"postings":[` + good + `],"idempotency_key":"nul\u0000key"}]}`, nil, 200, ""},
		{"POST", txPath(l) + "/batch", `{"transactions":[{"postings":[` + good + `],"reference":"nul\u0000"}]}`, nil, 200, ""},
		{"POST", txPath(l) + "/batch", `{"atomic":true,"transactions":[{"postings":[` + good + `],"reference":"nul\u0000"}]}`, nil, 422, "reference"},
		{"POST", accountsPath(l), `{"id":"x","asset":"USD","metadata":{"k":"nul\u0000"}}`, nil, 422, "metadata.k"},
		{"POST", accountsPath(l), `{"id":"x","asset":"USD","metadata":{"nul\u0000":"v"}}`, nil, 422, "metadata.nul\x00"},
		{"POST", accountsPath(l), `{"id":"x","asset":"USD"}`, []string{"Idempotency-Key", "key\xff"}, 422, "Idempotency-Key"},
		{"POST", accountsPath(l) + "/batch", `{"accounts":[{"id":"x","asset":"USD","metadata":{"k":"\u0000"}}]}`, nil, 200, ""},
		{"PATCH", accountsPath(l) + "/a", `{"metadata":{"k":"nul\u0000"}}`, nil, 422, "metadata.k"},
		{"PATCH", accountsPath(l) + "/a", `{"metadata":{"nul\u0000":null}}`, nil, 200, ""},
		{"GET", accountsPath(l) + "?prefix=%00", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?prefix=%FF", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?prefix=%C2%BF", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?prefix=a%00", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?prefix=%7F", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?metadata[k]=%00", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?metadata[%00]=v", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?metadata[k]=%FF", nil, nil, 200, empty},
		{"GET", accountsPath(l) + "?cursor=AA", nil, nil, 422, "cursor"}, // "\x00"
		{"GET", accountsPath(l) + "?cursor=_w", nil, nil, 422, "cursor"}, // "\xff"
		{"GET", accountsPath(l) + "?cursor=wr8", nil, nil, 200, empty},   // "¿", after every id
		{"GET", txPath(l) + "?reference=%00", nil, nil, 200, empty},
		{"GET", txPath(l) + "?reference=%FF", nil, nil, 200, empty},
		{"GET", txPath(l) + "?cursor=AA", nil, nil, 422, "cursor"},
		{"GET", txPath(l) + "?cursor=" + strings.Repeat("OTk5", 10), nil, nil, 422, "cursor"},
		{"GET", txPath(l) + "?after=99999999999999999999", nil, nil, 422, "after"},
		{"GET", txPath(l) + "?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", nil, nil, 200, ""},
		{"GET", txPath(l) + "?from=2026-01-01T00:00:00%2B14:00", nil, nil, 200, ""},
		{"GET", "/v1/api-keys?cursor=AA", nil, nil, 422, "cursor"},
		{"GET", "/v1/api-keys?cursor=_w", nil, nil, 422, "cursor"},
		{"GET", "/v1/api-keys?ledger=%00", nil, nil, 404, ""},
		{"DELETE", "/v1/api-keys/%00", nil, nil, 404, ""},
		{"DELETE", "/v1/api-keys/%FF", nil, nil, 404, ""},
		{"GET", "/v1/ledgers/%FF", nil, nil, 404, ""},
		{"GET", accountsPath(l) + "/%FF", nil, nil, 404, ""},
		{"GET", txPath(l) + "/%FF", nil, nil, 404, ""},
		{"POST", "/v1/api-keys", `{"ledger":"nul\u0000","role":"read"}`, nil, 404, ""},
		{"POST", "/v1/ledgers", `{"name":"nul\u0000"}`, nil, 422, "name"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			c := c.with(t)
			r := c.do(tc.method, tc.path, admin, tc.body, tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			switch {
			case tc.status == 422:
				requireField(t, r, tc.field)
			case tc.status == 200 && tc.field != "":
				if string(r.Body) != tc.field {
					t.Fatalf("%s, want %s", r.Body, tc.field)
				}
			case tc.status == 200 && tc.method == "POST":
				res := r.JSON()["results"].([]any)[0].(map[string]any)
				if st := num(t, res["status"]); st != 422 {
					t.Fatalf("item: %v", res)
				}
			}
		})
	}
	// A reversal's reference obeys the same rules.
	trID := str(c.walk(txPath(l)+"?limit=1", admin)[0], "id")
	requireField(t, c.do("POST", txPath(l)+"/"+trID+"/reverse", admin, `{"reference":"nul\u0000"}`), "reference")
	requireField(t, c.do("POST", txPath(l)+"/"+trID+"/reverse", admin, `{"reference":"`+strings.Repeat("é", 256)+`"}`), "reference")
	// Authorization headers that are no key at all.
	for _, auth := range []string{
		"Bearer ldk_\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff_" + strings.Repeat("0", 64),
		"Bearer ldk_" + strings.Repeat("\xc3\xa9", 8) + "_" + strings.Repeat("0", 64),
		"Bearer ldk_" + strings.Repeat("Z", 16) + "_" + strings.Repeat("0", 64),
		"Bearer \xff",
	} {
		c.expect(401, "unauthorized", "GET", "/v1/ledgers/"+l, "", nil, "Authorization", auth)
	}
	c.unchanged(l, before)
}
