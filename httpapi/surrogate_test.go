package httpapi_test

import (
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestLoneSurrogates: a \u escape of half a UTF-16 surrogate pair names no
// character; read as U+FFFD it would silently change what the client
// sent. In any string field — metadata keys and values, account ids,
// assets, references, a batch item's idempotency key — it is 422
// validation_failed naming the field, and nothing is written. A whole pair
// and a real U+FFFD are ordinary characters and are stored as sent.
func TestLoneSurrogates(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("surrogates")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", nil)
	before := c.snapshot(l, "world", "a")
	seq := c.lastSequence(l)
	good := `{"source":"world","destination":"a","amount":1,"asset":"USD"}`
	txWith := func(extra string) string { return `{"postings":[` + good + `]` + extra + `}` }
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"metadata value, high half", "POST", txPath(l), txWith(`,"metadata":{"k":"\ud800"}`), "metadata.k"},
		{"metadata value, low half", "POST", txPath(l), txWith(`,"metadata":{"k":"x\udc00y"}`), "metadata.k"},
		{"metadata value, halves reversed", "POST", txPath(l), txWith(`,"metadata":{"k":"\udc00\ud800"}`), "metadata.k"},
		{"metadata value, high half then a letter", "POST", txPath(l), txWith(`,"metadata":{"k":"\uD800\u0041"}`), "metadata.k"},
		{"metadata value, high half at the end", "POST", txPath(l), txWith(`,"metadata":{"k":"ok\udbff"}`), "metadata.k"},
		{"metadata key", "POST", txPath(l), txWith(`,"metadata":{"\ud800":"v"}`), "metadata.\ufffd"},
		{"reference", "POST", txPath(l), txWith(`,"reference":"r\udfff"`), "reference"},
		{"posting source", "POST", txPath(l), `{"postings":[{"source":"w\ud800","destination":"a","amount":1,"asset":"USD"}]}`, "postings[0].source"},
		{"posting asset", "POST", txPath(l), `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"\udc00"}]}`, "postings[0].asset"},
		{"atomic batch item idempotency key", "POST", txPath(l) + "/batch", `{"atomic":true,"transactions":[` + txWith(`,"idempotency_key":"k\ud800"`) + `]}`, "idempotency_key"},
		{"atomic batch item metadata", "POST", txPath(l) + "/batch", `{"atomic":true,"transactions":[` + txWith(`,"metadata":{"k":"\udc00"}`) + `]}`, "metadata.k"},
		{"account id", "POST", accountsPath(l), `{"id":"x\ud800","asset":"USD"}`, "id"},
		{"account metadata", "POST", accountsPath(l), `{"id":"x","asset":"USD","metadata":{"k":"\ud800"}}`, "metadata.k"},
		{"account patch", "PATCH", accountsPath(l) + "/a", `{"metadata":{"k":"\ud800"}}`, "metadata.k"},
		{"account patch key", "PATCH", accountsPath(l) + "/a", `{"metadata":{"\udc00":null}}`, "metadata.\ufffd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			r := c.expect(422, "validation_failed", tc.method, tc.path, admin, tc.body)
			requireField(t, r, tc.field)
			if !strings.Contains(string(r.Body), "surrogate") {
				t.Fatalf("the error does not say why: %s", r.Body)
			}
		})
	}
	// A non-atomic batch refuses the item alone.
	r := c.expect(200, "", "POST", txPath(l)+"/batch", admin,
		`{"transactions":[`+txWith(`,"metadata":{"k":"\ud800"}`)+`]}`)
	if !strings.Contains(string(r.Body), `"status":422`) || !strings.Contains(string(r.Body), "metadata.k") {
		t.Fatalf("non-atomic batch: %s", r.Body)
	}
	c.unchanged(l, before)
	if got := c.lastSequence(l); got != seq {
		t.Fatalf("sequence moved from %d to %d", seq, got)
	}

	// A pair is a character; so is U+FFFD itself, escaped or not. The
	// escaped backslash before "ud800" makes it text, not an escape.
	r = c.expect(201, "", "POST", txPath(l), admin,
		txWith(`,"metadata":{"\ud83d\ude00":"\uD83D\uDE00","r":"\ufffd`+"\ufffd"+`","t":"\\ud800"},"reference":"\ud83d\ude00"`))
	md, _ := r.JSON()["metadata"].(map[string]any)
	if md["😀"] != "😀" || md["r"] != "\ufffd\ufffd" || md["t"] != `\ud800` || r.JSON()["reference"] != "😀" {
		t.Fatalf("stored %s", r.Body)
	}
	id := str(r.JSON(), "id")
	got := c.expect(200, "", "GET", txPath(l)+"/"+id, admin, nil).JSON()
	if md, _ := got["metadata"].(map[string]any); md["😀"] != "😀" || md["r"] != "\ufffd\ufffd" {
		t.Fatalf("read back %v", got)
	}
}
