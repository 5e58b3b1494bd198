package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// This file holds the helpers shared by the API tests: a client bound to
// one test (so that subtests and goroutines never fail their parent), the
// checks every answer must pass, and snapshots of ledger state for
// invariant 7 ("bad input changes no ledger state").

const admin = ledgertest.AdminKey

// timeRE is the API's timestamp format: RFC 3339, UTC, microseconds.
var timeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

// client sends requests on behalf of one test.
type client struct {
	t testing.TB
	e *ledgertest.Env
}

// setup starts a node on a fresh database.
func setup(t *testing.T, o ledgertest.Options) client {
	t.Helper()
	return client{t: t, e: ledgertest.Start(t, o)}
}

// with returns the client for a subtest.
func (c client) with(t testing.TB) client { return client{t: t, e: c.e} }

// do sends a request and checks what every answer must satisfy: no 5xx
// (invariant 7: bad input never causes one), a Request-Id header,
// Cache-Control: no-store and X-Content-Type-Options: nosniff, and for
// errors an RFC 9457 problem with a stable code and the answer's status.
func (c client) do(method, path, key string, body any, headers ...string) *ledgertest.Response {
	c.t.Helper()
	r, err := c.e.TryDo(method, path, key, body, headers...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := checkAnswer(r); err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// checkAnswer is do's checks as an error, for use from goroutines.
func checkAnswer(r *ledgertest.Response) error {
	if r.Status >= 500 {
		return fmt.Errorf("server error %d: %s", r.Status, r.Body)
	}
	if r.Header.Get("Request-Id") == "" {
		return fmt.Errorf("no Request-Id header (status %d)", r.Status)
	}
	if err := checkSafetyHeaders(r.Header); err != nil {
		return fmt.Errorf("%v (status %d)", err, r.Status)
	}
	if r.Status < 400 {
		// Batch items carry their own status: never a 5xx either.
		if res, ok := r.JSON()["results"].([]any); ok {
			for i, it := range res {
				m, _ := it.(map[string]any)
				if n, err := strconv.Atoi(fmt.Sprint(m["status"])); err != nil || n >= 500 {
					return fmt.Errorf("batch item %d: %v", i, it)
				}
			}
		}
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("error %d with Content-Type %q: %s", r.Status, ct, r.Body)
	}
	p := r.JSON()
	for _, k := range []string{"type", "title", "detail", "code"} {
		if s, ok := p[k].(string); !ok || (s == "" && k != "detail") {
			return fmt.Errorf("problem without %q: %s", k, r.Body)
		}
	}
	if n, _ := p["status"].(json.Number); n.String() != strconv.Itoa(r.Status) {
		return fmt.Errorf("problem status %v, answer %d: %s", p["status"], r.Status, r.Body)
	}
	return nil
}

// checkSafetyHeaders requires the headers every answer carries: nothing
// may cache a balance or a key secret, nor sniff a type.
func checkSafetyHeaders(h http.Header) error {
	if v := h.Values("Cache-Control"); len(v) != 1 || v[0] != "no-store" {
		return fmt.Errorf("Cache-Control %q, want [no-store]", v)
	}
	if v := h.Values("X-Content-Type-Options"); len(v) != 1 || v[0] != "nosniff" {
		return fmt.Errorf("X-Content-Type-Options %q, want [nosniff]", v)
	}
	return nil
}

// expect sends a request and requires a status (and problem code).
func (c client) expect(status int, code, method, path, key string, body any, headers ...string) *ledgertest.Response {
	c.t.Helper()
	r := c.do(method, path, key, body, headers...)
	if r.Status != status || (code != "" && r.Code() != code) {
		c.t.Fatalf("%s %s: got %d %s, want %d %s", method, path, r.Status, r.Body, status, code)
	}
	return r
}

func (c client) ledger(name string) string {
	c.t.Helper()
	c.expect(201, "", "POST", "/v1/ledgers", admin, map[string]any{"name": name})
	return name
}

func (c client) key(ledger, role string) string {
	c.t.Helper()
	r := c.expect(201, "", "POST", "/v1/api-keys", admin, map[string]any{"ledger": ledger, "role": role})
	return str(r.JSON(), "key")
}

// account creates an account; min nil means unbounded.
func (c client) account(ledger, id, asset string, min *int64) {
	c.t.Helper()
	c.expect(201, "", "POST", accountsPath(ledger), admin, map[string]any{"id": id, "asset": asset, "min_balance": min})
}

// transfer posts a single-posting transaction with the bootstrap key.
func (c client) transfer(ledger, from, to string, amount int64, asset string, headers ...string) *ledgertest.Response {
	c.t.Helper()
	return c.do("POST", txPath(ledger), admin, tx(posting(from, to, amount, asset)), headers...)
}

// fund moves amount from an unbounded account and requires a 201.
func (c client) fund(ledger, from, to string, amount int64, asset string) map[string]any {
	c.t.Helper()
	r := c.transfer(ledger, from, to, amount, asset)
	if r.Status != 201 {
		c.t.Fatalf("fund %s: %d %s", to, r.Status, r.Body)
	}
	return r.JSON()
}

func (c client) getAccount(ledger, id string) map[string]any {
	c.t.Helper()
	return c.expect(200, "", "GET", accountsPath(ledger)+"/"+id, admin, nil).JSON()
}

func (c client) posted(ledger, id string) int64 {
	c.t.Helper()
	return num(c.t, c.getAccount(ledger, id)["balance"].(map[string]any)["posted"])
}

func (c client) lastSequence(ledger string) int64 {
	c.t.Helper()
	return num(c.t, c.expect(200, "", "GET", "/v1/ledgers/"+ledger, admin, nil).JSON()["last_sequence"])
}

// snapshot is what a rejected request must not change: the ledger's
// sequence, the accounts' balances, versions, limits and metadata, and the
// ledger's API keys.
type snapshot struct {
	lastSequence int64
	accounts     map[string]string
	keys         string
}

func (c client) snapshot(ledger string, accounts ...string) snapshot {
	c.t.Helper()
	s := snapshot{lastSequence: c.lastSequence(ledger), accounts: map[string]string{}}
	for _, id := range accounts {
		r := c.do("GET", accountsPath(ledger)+"/"+id, admin, nil)
		s.accounts[id] = fmt.Sprintf("%d %s", r.Status, r.Body)
	}
	s.keys = string(c.expect(200, "", "GET", "/v1/api-keys?limit=1000&ledger="+ledger, admin, nil).Body)
	return s
}

// unchanged fails unless the ledger is as snapshot s saw it (invariant 7).
func (c client) unchanged(ledger string, s snapshot) {
	c.t.Helper()
	ids := make([]string, 0, len(s.accounts))
	for id := range s.accounts {
		ids = append(ids, id)
	}
	now := c.snapshot(ledger, ids...)
	if now.lastSequence != s.lastSequence {
		c.t.Fatalf("last_sequence moved from %d to %d", s.lastSequence, now.lastSequence)
	}
	for id, before := range s.accounts {
		if now.accounts[id] != before {
			c.t.Fatalf("account %s changed:\nbefore %s\nafter  %s", id, before, now.accounts[id])
		}
	}
	if now.keys != s.keys {
		c.t.Fatalf("API keys changed:\nbefore %s\nafter  %s", s.keys, now.keys)
	}
}

// walk follows next_cursor from the first page of path (which has a query
// string) and returns every item in order.
func (c client) walk(path, key string) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			c.t.Fatalf("walk %s: too many pages", path)
		}
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		m := c.expect(200, "", "GET", p, key, nil).JSON()
		data, ok := m["data"].([]any)
		if !ok {
			c.t.Fatalf("GET %s: no data array: %v", p, m)
		}
		for _, d := range data {
			all = append(all, d.(map[string]any))
		}
		nc, present := m["next_cursor"]
		if !present {
			c.t.Fatalf("GET %s: no next_cursor member", p)
		}
		if nc == nil {
			return all
		}
		cursor = nc.(string)
		if cursor == "" {
			c.t.Fatalf("GET %s: empty next_cursor", p)
		}
		if len(data) == 0 {
			c.t.Fatalf("GET %s: an empty page with a next_cursor", p)
		}
	}
}

func accountsPath(ledger string) string { return "/v1/ledgers/" + ledger + "/accounts" }
func txPath(ledger string) string       { return "/v1/ledgers/" + ledger + "/transactions" }

func posting(from, to string, amount any, asset string) map[string]any {
	return map[string]any{"source": from, "destination": to, "amount": amount, "asset": asset}
}

func tx(postings ...map[string]any) map[string]any {
	ps := make([]any, len(postings))
	for i, p := range postings {
		ps[i] = p
	}
	return map[string]any{"postings": ps}
}

// merge returns a copy of m with the key/value pairs kv set.
func merge(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an int64: %v", v, err)
	}
	return i
}

// fields returns the field names of a problem's errors.
func fields(r *ledgertest.Response) []string {
	var out []string
	errs, _ := r.JSON()["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		out = append(out, str(m, "field"))
	}
	return out
}

// requireField fails unless r is a 422 validation_failed naming field.
func requireField(t testing.TB, r *ledgertest.Response, field string) {
	t.Helper()
	if r.Status != 422 || r.Code() != "validation_failed" {
		t.Fatalf("got %d %s, want 422 validation_failed on %s", r.Status, r.Body, field)
	}
	fs := fields(r)
	if !slices.Contains(fs, field) {
		t.Fatalf("errors name %q, want %q: %s", fs, field, r.Body)
	}
	for _, e := range r.JSON()["errors"].([]any) {
		if str(e.(map[string]any), "message") == "" {
			t.Fatalf("field error without message: %s", r.Body)
		}
	}
}

// keysOf returns the member names of a JSON object, sorted.
func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// requireKeys fails unless m has exactly the members want (sorted or not).
func requireKeys(t testing.TB, what string, m map[string]any, want ...string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Fatalf("%s has members %q, want %q", what, got, want)
	}
}

func requireTime(t testing.TB, what string, v any) {
	t.Helper()
	s, _ := v.(string)
	if !timeRE.MatchString(s) {
		t.Fatalf("%s = %v, want RFC 3339 UTC with microseconds", what, v)
	}
}

// compact re-encodes a JSON value without white space, for comparisons.
func compact(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// ids returns the "id" member of each item.
func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = str(it, "id")
	}
	return out
}
