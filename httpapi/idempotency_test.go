package httpapi_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func idemLedger(t *testing.T) (client, string) {
	c := setup(t, ledgertest.Options{})
	l := c.ledger("idem")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	c.account(l, "b", "USD", ledgertest.Int64(0))
	return c, l
}

var idemAccounts = []string{"world", "a", "b"}

// TestIdempotentReplay is invariant 4: a retry with the same key and body
// returns the stored outcome (200, Idempotent-Replayed: true, the same
// transaction) and posts nothing new.
func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	write := c.key(l, "write")
	body := merge(tx(posting("world", "a", 25, "USD")), "metadata", map[string]any{"x": "1"}, "reference", "ref-1")
	first := c.expect(201, "", "POST", txPath(l), write, body, "Idempotency-Key", "k1")
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the first answer is marked replayed")
	}
	before := c.snapshot(l, idemAccounts...)
	for i := 0; i < 3; i++ {
		r := c.expect(200, "", "POST", txPath(l), write, body, "Idempotency-Key", "k1")
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %d without Idempotent-Replayed: %v", i, r.Header)
		}
		if compact(t, r.JSON()) != compact(t, first.JSON()) {
			t.Fatalf("replay %v, first %v", r.JSON(), first.JSON())
		}
	}
	// Another key of the same ledger (and the bootstrap key) replay too:
	// keys belong to the ledger, not to the API key.
	c.expect(200, "", "POST", txPath(l), admin, body, "Idempotency-Key", "k1")
	c.unchanged(l, before)
	// The reference is not "duplicate" for a replay, but is for a new key.
	r := c.expect(409, "duplicate_reference", "POST", txPath(l), write, body, "Idempotency-Key", "k2")
	if str(r.JSON(), "transaction_id") != str(first.JSON(), "id") {
		t.Fatalf("duplicate_reference: %s", r.Body)
	}
	// …and that rejection is stored and replayed as such.
	r = c.expect(409, "duplicate_reference", "POST", txPath(l), write, body, "Idempotency-Key", "k2")
	if r.Header.Get("Idempotent-Replayed") != "true" || str(r.JSON(), "transaction_id") != str(first.JSON(), "id") {
		t.Fatalf("replayed duplicate_reference: %v %s", r.Header, r.Body)
	}
	// Without a key, nothing is de-duplicated.
	plain := tx(posting("world", "a", 1, "USD"))
	a := c.expect(201, "", "POST", txPath(l), write, plain)
	b := c.expect(201, "", "POST", txPath(l), write, plain)
	if str(a.JSON(), "id") == str(b.JSON(), "id") {
		t.Fatalf("two posts without a key were merged")
	}
}

func TestIdempotencyKeyReused(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	body := tx(posting("world", "a", 10, "USD"))
	c.expect(201, "", "POST", txPath(l), admin, body, "Idempotency-Key", "k")
	before := c.snapshot(l, idemAccounts...)
	for _, other := range []any{
		tx(posting("world", "a", 11, "USD")),
		tx(posting("world", "b", 10, "USD")),
		tx(posting("world", "a", 10, "USD"), posting("world", "b", 1, "USD")),
		merge(body, "metadata", map[string]any{"x": "y"}),
		merge(body, "reference", "r"),
		merge(body, "pending", true),
		merge(body, "pending", true, "pending_timeout_seconds", 60),
	} {
		r := c.expect(422, "idempotency_key_reused", "POST", txPath(l), admin, other, "Idempotency-Key", "k")
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("idempotency_key_reused marked replayed")
		}
	}
	// Another route with the same key: one namespace per ledger.
	c.expect(422, "idempotency_key_reused", "POST", accountsPath(l), admin, map[string]any{"id": "new", "asset": "USD"}, "Idempotency-Key", "k")
	c.unchanged(l, before)
	// The original still replays.
	c.expect(200, "", "POST", txPath(l), admin, body, "Idempotency-Key", "k")
}

// TestStoredRejectionReplayed: a business rejection is stored and replayed
// as the same status and problem, even when the request would now succeed.
func TestStoredRejectionReplayed(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	c.account(l, "eur", "EUR", nil)
	for _, tc := range []struct {
		key    string
		body   any
		status int
		code   string
		fix    func(c client)
	}{
		{"poor", tx(posting("a", "b", 50, "USD")), 422, "insufficient_funds", func(c client) { c.fund(l, "world", "a", 100, "USD") }},
		{"ghost", tx(posting("world", "ghost", 5, "USD")), 422, "account_not_found", func(c client) { c.account(l, "ghost", "USD", nil) }},
		{"asset", tx(posting("world", "eur", 5, "EUR")), 422, "asset_mismatch", func(client) {}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			c := c.with(t)
			first := c.expect(tc.status, tc.code, "POST", txPath(l), admin, tc.body, "Idempotency-Key", tc.key)
			tc.fix(c)
			before := c.snapshot(l, "world", "a", "b", "ghost")
			r := c.expect(tc.status, tc.code, "POST", txPath(l), admin, tc.body, "Idempotency-Key", tc.key)
			if r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("stored rejection replayed without the header: %v", r.Header)
			}
			if str(r.JSON(), "detail") != str(first.JSON(), "detail") || str(r.JSON(), "type") != str(first.JSON(), "type") {
				t.Fatalf("replayed problem %s, first %s", r.Body, first.Body)
			}
			c.unchanged(l, before)
			// Without the key, the request now succeeds (when it can).
			if tc.code != "asset_mismatch" {
				c.expect(201, "", "POST", txPath(l), admin, tc.body)
			}
			// A different body under the key is still reuse.
			c.expect(422, "idempotency_key_reused", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", tc.key)
		})
	}
}

// TestNotStoredOutcomes: validation failures, malformed bodies, auth and
// role failures are not stored; the key may be used again.
func TestNotStoredOutcomes(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	read := c.key(l, "read")
	good := tx(posting("world", "a", 10, "USD"))
	c.expect(422, "validation_failed", "POST", txPath(l), admin, tx(posting("world", "a", 0, "USD")), "Idempotency-Key", "k")
	c.expect(422, "validation_failed", "POST", txPath(l), admin, merge(good, "bogus", 1), "Idempotency-Key", "k")
	c.expect(400, "malformed_json", "POST", txPath(l), admin, `{"postings":[`, "Idempotency-Key", "k")
	c.expect(401, "unauthorized", "POST", txPath(l), "", good, "Idempotency-Key", "k")
	c.expect(403, "forbidden", "POST", txPath(l), read, good, "Idempotency-Key", "k")
	c.expect(413, "payload_too_large", "POST", txPath(l), admin, pad(`{"postings":[]}`, 2<<20), "Idempotency-Key", "k")
	c.expect(404, "not_found", "POST", txPath("nope"), admin, good, "Idempotency-Key", "k")
	// Validation failure of an overflowing result is not stored either.
	c.expect(422, "validation_failed", "POST", txPath(l), admin, tx(posting("world", "a", 1<<62, "USD"), posting("world", "a", 1<<62, "USD")), "Idempotency-Key", "k")
	first := c.expect(201, "", "POST", txPath(l), admin, good, "Idempotency-Key", "k")
	r := c.expect(200, "", "POST", txPath(l), admin, good, "Idempotency-Key", "k")
	if str(r.JSON(), "id") != str(first.JSON(), "id") || c.posted(l, "a") != 10 {
		t.Fatalf("replay after unstored failures: %s, a %d", r.Body, c.posted(l, "a"))
	}
}

// TestIdempotencyCanonicalBody: member order, white space and null for an
// absent optional field do not make another request.
func TestIdempotencyCanonicalBody(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	first := c.expect(201, "", "POST", txPath(l), admin,
		`{"postings":[{"source":"world","destination":"a","amount":5,"asset":"USD"},{"source":"world","destination":"b","amount":6,"asset":"USD"}],"metadata":{"x":"1","y":"2"}}`,
		"Idempotency-Key", "canon")
	before := c.snapshot(l, idemAccounts...)
	for _, same := range []string{
		"{\n  \"metadata\" : { \"y\":\"2\", \"x\":\"1\" },\n  \"postings\": [ {\"asset\":\"USD\",\"amount\":5,\"destination\":\"a\",\"source\":\"world\"},\n\t{\"amount\":6,\"source\":\"world\",\"asset\":\"USD\",\"destination\":\"b\"} ]\n}\n",
		`{"postings":[{"source":"world","destination":"a","amount":5,"asset":"USD"},{"source":"world","destination":"b","amount":6,"asset":"USD"}],"metadata":{"x":"1","y":"2"},"reference":null,"pending":null,"pending_timeout_seconds":null}`,
		`{"postings":[{"source":"world","destination":"a","amount":5,"asset":"USD"},{"source":"world","destination":"b","amount":6,"asset":"USD"}],"metadata":{"x":"\u0031","y":"2"}}`,
	} {
		r := c.expect(200, "", "POST", txPath(l), admin, same, "Idempotency-Key", "canon")
		if str(r.JSON(), "id") != str(first.JSON(), "id") || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%q: %s", same, r.Body)
		}
	}
	// Posting order is meaning, not form.
	c.expect(422, "idempotency_key_reused", "POST", txPath(l), admin,
		`{"postings":[{"source":"world","destination":"b","amount":6,"asset":"USD"},{"source":"world","destination":"a","amount":5,"asset":"USD"}],"metadata":{"x":"1","y":"2"}}`,
		"Idempotency-Key", "canon")
	c.unchanged(l, before)
}

// TestIdempotencyRace: 32 identical requests at once post exactly one
// transaction; every answer is 201 or 200 with the same id.
func TestIdempotencyRace(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	write := c.key(l, "write")
	for round, body := range []any{
		tx(posting("world", "a", 3, "USD")),
		merge(tx(posting("world", "b", 4, "USD")), "reference", "race-ref"),
	} {
		key := fmt.Sprintf("race-%d", round)
		seq := c.lastSequence(l)
		const n = 32
		var wg sync.WaitGroup
		answers := make([]*ledgertest.Response, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := c.e.TryDo("POST", txPath(l), write, body, "Idempotency-Key", key)
				if err == nil {
					err = checkAnswer(r)
				}
				answers[i], errs[i] = r, err
			}()
		}
		close(start)
		wg.Wait()
		created, id := 0, ""
		for i, r := range answers {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			switch r.Status {
			case 201:
				created++
			case 200:
				if r.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("200 without Idempotent-Replayed")
				}
			default:
				t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
			}
			if id == "" {
				id = str(r.JSON(), "id")
			}
			if got := str(r.JSON(), "id"); got != id || got == "" {
				t.Fatalf("request %d answered transaction %q, another %q", i, got, id)
			}
		}
		if created != 1 {
			t.Fatalf("%d answers were 201", created)
		}
		if got := c.lastSequence(l); got != seq+1 {
			t.Fatalf("last_sequence %d → %d: more than one transaction", seq, got)
		}
	}
	if c.posted(l, "a") != 3 || c.posted(l, "b") != 4 {
		t.Fatalf("a %d, b %d", c.posted(l, "a"), c.posted(l, "b"))
	}
}

// TestIdempotencyRaceMixed: racing requests with one key and different
// bodies: exactly one wins, the others are idempotency_key_reused or
// replays of the winner.
func TestIdempotencyRaceMixed(t *testing.T) {
	t.Parallel()
	c, l := idemLedger(t)
	const n = 24
	var wg sync.WaitGroup
	answers := make([]*ledgertest.Response, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.e.TryDo("POST", txPath(l), admin, tx(posting("world", "a", int64(1+i%3), "USD")), "Idempotency-Key", "mixed")
			if err == nil {
				err = checkAnswer(r)
			}
			answers[i], errs[i] = r, err
		}()
	}
	wg.Wait()
	winner := int64(0)
	created := 0
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch {
		case r.Status == 201:
			created++
			winner = int64(1 + i%3)
		case r.Status == 200:
		case r.Status == 422 && r.Code() == "idempotency_key_reused":
		default:
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	if created != 1 || c.lastSequence(l) != 1 || c.posted(l, "a") != winner {
		t.Fatalf("%d created, last_sequence %d, a %d (winner %d)", created, c.lastSequence(l), c.posted(l, "a"), winner)
	}
}

// TestIdempotencyKeysPerLedger: the same key on two ledgers is two keys.
func TestIdempotencyKeysPerLedger(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	var ids []string
	for _, l := range []string{"one", "two"} {
		c.ledger(l)
		c.account(l, "world", "USD", nil)
		c.account(l, "a", "USD", nil)
		r := c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "shared")
		ids = append(ids, str(r.JSON(), "id"))
		r = c.expect(201, "", "POST", accountsPath(l), admin, map[string]any{"id": "acct", "asset": "USD"}, "Idempotency-Key", "shared-acct")
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("account creation on %s replayed another ledger's key", l)
		}
	}
	if ids[0] == ids[1] {
		t.Fatalf("two ledgers share transaction %s", ids[0])
	}
	// A different body on the second ledger does not collide either.
	c.expect(201, "", "POST", txPath("two"), admin, tx(posting("world", "a", 2, "USD")), "Idempotency-Key", "only-two")
	c.expect(201, "", "POST", txPath("one"), admin, tx(posting("world", "a", 3, "USD")), "Idempotency-Key", "only-two")
	for _, l := range []string{"one", "two"} {
		r := c.expect(200, "", "POST", txPath(l), admin, tx(posting("world", "a", 1, "USD")), "Idempotency-Key", "shared")
		if str(r.JSON(), "id") == "" || (l == "one" && str(r.JSON(), "id") != ids[0]) || (l == "two" && str(r.JSON(), "id") != ids[1]) {
			t.Fatalf("%s replays %s", l, r.Body)
		}
	}
}
