package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// batchLedger is a ledger with a funding account and three wallets.
func batchLedger(t *testing.T, o ledgertest.Options) (client, string) {
	c := setup(t, o)
	l := c.ledger("batch")
	c.account(l, "world", "USD", nil)
	for _, id := range []string{"a", "b", "c"} {
		c.account(l, id, "USD", ledgertest.Int64(0))
	}
	c.account(l, "eur", "EUR", nil)
	return c, l
}

var batchAccounts = []string{"world", "a", "b", "c", "eur"}

type itemWant struct {
	status int
	code   string
	field  string
}

// requireResults checks a batch answer item by item.
func requireResults(t testing.TB, r *ledgertest.Response, want []itemWant) []map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	m := r.JSON()
	requireKeys(t, "batch answer", m, "results")
	res := m["results"].([]any)
	if len(res) != len(want) {
		t.Fatalf("%d results for %d items: %s", len(res), len(want), r.Body)
	}
	out := make([]map[string]any, len(res))
	for i, w := range want {
		it := res[i].(map[string]any)
		out[i] = it
		if int(num(t, it["status"])) != w.status {
			t.Fatalf("item %d: %v, want status %d", i, it, w.status)
		}
		if w.status < 300 {
			tr, ok := it["transaction"].(map[string]any)
			if !ok || it["error"] != nil {
				t.Fatalf("item %d: %v", i, it)
			}
			requireKeys(t, "item transaction", tr, "id", "sequence", "status", "postings", "metadata", "reference", "created_at")
			continue
		}
		p, ok := it["error"].(map[string]any)
		if !ok || it["transaction"] != nil {
			t.Fatalf("item %d: %v", i, it)
		}
		if str(p, "code") != w.code || int(num(t, p["status"])) != w.status || str(p, "type") == "" || str(p, "title") == "" {
			t.Fatalf("item %d: problem %v, want %s", i, p, w.code)
		}
		if _, ok := p["index"]; ok {
			t.Fatalf("item %d of a non-atomic batch carries an index: %v", i, p)
		}
		if w.field != "" {
			var fs []string
			errs, _ := p["errors"].([]any)
			for _, e := range errs {
				fs = append(fs, str(e.(map[string]any), "field"))
			}
			if !slices.Contains(fs, w.field) {
				t.Fatalf("item %d: fields %q, want %q (relative to the item)", i, fs, w.field)
			}
		}
	}
	return out
}

func batchOf(atomic bool, items ...any) map[string]any {
	return map[string]any{"atomic": atomic, "transactions": items}
}

func TestBatchNonAtomic(t *testing.T) {
	t.Parallel()
	c, l := batchLedger(t, ledgertest.Options{})
	write := c.key(l, "write")
	r := c.do("POST", txPath(l)+"/batch", write, batchOf(false,
		tx(posting("world", "a", 100, "USD")),                            // 0: 201
		tx(posting("world", "a", 0, "USD")),                              // 1: 422 validation
		tx(posting("a", "b", 60, "USD")),                                 // 2: 201, needs item 0's funds
		tx(posting("a", "b", 41, "USD")),                                 // 3: 422 insufficient (40 left)
		tx(posting("ghost", "b", 1, "USD")),                              // 4: 422 account_not_found
		tx(posting("eur", "b", 1, "EUR")),                                // 5: 422 asset_mismatch
		merge(tx(posting("b", "c", 10, "USD")), "reference", "r-1"),      // 6: 201
		merge(tx(posting("b", "c", 10, "USD")), "reference", "r-1"),      // 7: 409 duplicate_reference (item 6)
		merge(tx(posting("a", "c", 40, "USD")), "memo", "x"),             // 8: 422 unknown member
		tx(posting("a", "c", 40, "USD")),                                 // 9: 201, exactly a's balance
		tx(posting("world", "a", 1, "USD"), posting("a", "a", 1, "USD")), // 10: 422 on the second posting
	))
	res := requireResults(t, r, []itemWant{
		{201, "", ""}, {422, "validation_failed", "postings[0].amount"}, {201, "", ""},
		{422, "insufficient_funds", ""}, {422, "account_not_found", ""}, {422, "asset_mismatch", ""},
		{201, "", ""}, {409, "duplicate_reference", ""}, {422, "validation_failed", "memo"}, {201, "", ""},
		{422, "validation_failed", "postings[1].destination"},
	})
	// Items apply in request order: sequences follow it.
	var seqs []int64
	for _, i := range []int{0, 2, 6, 9} {
		seqs = append(seqs, num(t, res[i]["transaction"].(map[string]any)["sequence"]))
	}
	if !slices.Equal(seqs, []int64{1, 2, 3, 4}) {
		t.Fatalf("sequences %v", seqs)
	}
	if id := str(res[7]["error"].(map[string]any), "transaction_id"); id != str(res[6]["transaction"].(map[string]any), "id") {
		t.Fatalf("duplicate_reference names %q", id)
	}
	// Item transactions are the ones stored.
	for _, i := range []int{0, 2, 6, 9} {
		tr := res[i]["transaction"].(map[string]any)
		got := c.expect(200, "", "GET", txPath(l)+"/"+str(tr, "id"), admin, nil).JSON()
		if compact(t, got) != compact(t, tr) {
			t.Fatalf("item %d: %v, stored %v", i, tr, got)
		}
	}
	for id, want := range map[string]int64{"world": -100, "a": 0, "b": 50, "c": 50} {
		if got := c.posted(l, id); got != want {
			t.Fatalf("%s: %d, want %d", id, got, want)
		}
	}
	if c.lastSequence(l) != 4 {
		t.Fatalf("last_sequence %d", c.lastSequence(l))
	}

	// Without "atomic", a batch is not atomic; null counts as absent.
	r = c.do("POST", txPath(l)+"/batch", write, `{"transactions":[{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]},{"postings":[{"source":"a","destination":"b","amount":2,"asset":"USD"}]}],"atomic":null}`)
	requireResults(t, r, []itemWant{{201, "", ""}, {422, "insufficient_funds", ""}})

	// A batch where nothing is valid posts nothing.
	before := c.snapshot(l, batchAccounts...)
	r = c.do("POST", txPath(l)+"/batch", write, batchOf(false, tx(posting("a", "b", 1000, "USD")), tx(posting("x y", "b", 1, "USD"))))
	requireResults(t, r, []itemWant{{422, "insufficient_funds", ""}, {422, "validation_failed", "postings[0].source"}})
	c.unchanged(l, before)
}

func TestBatchAtomic(t *testing.T) {
	t.Parallel()
	c, l := batchLedger(t, ledgertest.Options{})
	write := c.key(l, "write")

	// All succeed: later items rely on earlier ones.
	r := c.do("POST", txPath(l)+"/batch", write, batchOf(true,
		tx(posting("world", "a", 10, "USD")),
		tx(posting("a", "b", 10, "USD")),
		tx(posting("b", "c", 10, "USD")),
	))
	res := requireResults(t, r, []itemWant{{201, "", ""}, {201, "", ""}, {201, "", ""}})
	for i, it := range res {
		if num(t, it["transaction"].(map[string]any)["sequence"]) != int64(i+1) {
			t.Fatalf("item %d: %v", i, it)
		}
	}
	if c.posted(l, "c") != 10 || c.posted(l, "a") != 0 {
		t.Fatalf("after the atomic batch: a %d, c %d", c.posted(l, "a"), c.posted(l, "c"))
	}

	for _, tc := range []struct {
		name   string
		items  []any
		index  int
		status int
		code   string
		field  string
	}{
		{"business failure in the middle", []any{
			tx(posting("world", "a", 5, "USD")), tx(posting("a", "b", 6, "USD")), tx(posting("world", "b", 1, "USD")),
		}, 1, 422, "insufficient_funds", ""},
		{"the last item fails", []any{
			tx(posting("world", "a", 5, "USD")), tx(posting("a", "b", 5, "USD")), tx(posting("ghost", "b", 1, "USD")),
		}, 2, 422, "account_not_found", ""},
		{"first failure wins", []any{
			tx(posting("world", "a", 5, "USD")), tx(posting("eur", "a", 1, "EUR")), tx(posting("a", "b", 100, "USD")),
		}, 1, 422, "asset_mismatch", ""},
		{"duplicate reference inside the batch", []any{
			merge(tx(posting("world", "a", 5, "USD")), "reference", "same"), merge(tx(posting("world", "a", 5, "USD")), "reference", "same"),
		}, 1, 409, "duplicate_reference", ""},
		{"validation failure", []any{
			tx(posting("world", "a", 5, "USD")), tx(posting("world", "a", 5, "USD")), tx(posting("world", "a", 1.5, "USD")),
		}, 2, 422, "validation_failed", "postings[0].amount"},
		{"validation failure in the first item", []any{
			map[string]any{"postings": []any{}}, tx(posting("world", "a", 5, "USD")),
		}, 0, 422, "validation_failed", "postings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, batchAccounts...)
			r := c.expect(tc.status, tc.code, "POST", txPath(l)+"/batch", write, batchOf(true, tc.items...))
			if n, ok := r.JSON()["index"]; !ok || num(t, n) != int64(tc.index) {
				t.Fatalf("index %v, want %d: %s", n, tc.index, r.Body)
			}
			if tc.field != "" {
				requireField(t, r, tc.field)
			}
			c.unchanged(l, before)
		})
	}
	// Nothing of the failed batches was posted; sequences go on without a gap.
	m := c.fund(l, "world", "a", 1, "USD")
	if num(t, m["sequence"]) != 4 {
		t.Fatalf("next sequence %v, want 4", m["sequence"])
	}
	// A reference of a failed atomic batch is still free.
	c.expect(201, "", "POST", txPath(l), write, merge(tx(posting("world", "a", 1, "USD")), "reference", "same"))
}

func TestBatchLimits(t *testing.T) {
	t.Parallel()
	c, l := batchLedger(t, ledgertest.Options{BatchMaxItems: 3})
	write := c.key(l, "write")
	item := tx(posting("world", "a", 1, "USD"))
	before := c.snapshot(l, batchAccounts...)
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"more items than the limit", batchOf(false, item, item, item, item), "transactions"},
		{"more items than the limit, atomic", batchOf(true, item, item, item, item), "transactions"},
		{"far more items than the limit", map[string]any{"transactions": slices.Repeat([]any{item}, 5000)}, "transactions"},
		{"no transactions member", `{"atomic":true}`, "transactions"},
		{"transactions null", `{"transactions":null}`, "transactions"},
		{"empty", `{"transactions":[]}`, "transactions"},
		{"transactions an object", map[string]any{"transactions": item}, "transactions"},
		{"atomic a string", map[string]any{"atomic": "yes", "transactions": []any{item}}, "atomic"},
		{"unknown member", map[string]any{"transactions": []any{item}, "dry_run": true}, "dry_run"},
		{"duplicate member", `{"transactions":[],"transactions":[]}`, "transactions"},
		{"an array", []any{item}, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			requireField(t, c.do("POST", txPath(l)+"/batch", write, tc.body), tc.field)
			c.unchanged(l, before)
		})
	}
	requireResults(t, c.do("POST", txPath(l)+"/batch", write, batchOf(false, item, item, item)), []itemWant{{201, "", ""}, {201, "", ""}, {201, "", ""}})
	// Items in a batch that is not atomic keep their own field errors.
	r := c.do("POST", txPath(l)+"/batch", write, map[string]any{"transactions": []any{
		"not an object", map[string]any{"postings": []any{posting("world", "a", 1, "USD")}, "idempotency_key": strings.Repeat("k", 256)},
		map[string]any{"postings": []any{posting("world", "a", 1, "USD")}, "idempotency_key": 7},
	}})
	requireResults(t, r, []itemWant{{422, "validation_failed", "body"}, {422, "validation_failed", "idempotency_key"}, {422, "validation_failed", "idempotency_key"}})
}

// TestBatchItemIdempotency: a batch item's key is bound as if the item had
// been posted alone, in the ledger's one namespace.
func TestBatchItemIdempotency(t *testing.T) {
	t.Parallel()
	c, l := batchLedger(t, ledgertest.Options{})
	write := c.key(l, "write")
	single := tx(posting("world", "a", 7, "USD"))
	first := c.expect(201, "", "POST", txPath(l), write, single, "Idempotency-Key", "k-single").JSON()

	// The same key and body as an item: a replay of the single post.
	r := c.do("POST", txPath(l)+"/batch", write, batchOf(false,
		merge(single, "idempotency_key", "k-single"),
		merge(tx(posting("world", "b", 3, "USD")), "idempotency_key", "k-item"),
		merge(tx(posting("world", "b", 4, "USD")), "idempotency_key", "k-single"), // another body
		merge(tx(posting("world", "b", 3, "USD")), "idempotency_key", "k-item"),   // replay of item 1
		merge(tx(posting("world", "b", 5, "USD")), "idempotency_key", "k-item"),   // reused
	))
	res := requireResults(t, r, []itemWant{{200, "", ""}, {201, "", ""}, {422, "idempotency_key_reused", ""}, {200, "", ""}, {422, "idempotency_key_reused", ""}})
	if id := str(res[0]["transaction"].(map[string]any), "id"); id != str(first, "id") {
		t.Fatalf("replayed item has id %s, the single post %s", id, str(first, "id"))
	}
	if res[0]["replayed"] != true || res[3]["replayed"] != true {
		t.Fatalf("replayed items are not marked: %v, %v", res[0], res[3])
	}
	item := res[1]["transaction"].(map[string]any)
	if str(res[3]["transaction"].(map[string]any), "id") != str(item, "id") {
		t.Fatalf("a repeated key in one batch posted twice")
	}
	if c.lastSequence(l) != 2 || c.posted(l, "b") != 3 {
		t.Fatalf("last_sequence %d, b %d", c.lastSequence(l), c.posted(l, "b"))
	}

	// The item's key replays as a single post, with its body.
	r = c.expect(200, "", "POST", txPath(l), write, tx(posting("world", "b", 3, "USD")), "Idempotency-Key", "k-item")
	if r.Header.Get("Idempotent-Replayed") != "true" || str(r.JSON(), "id") != str(item, "id") {
		t.Fatalf("single replay of an item key: %v %s", r.Header, r.Body)
	}
	c.expect(422, "idempotency_key_reused", "POST", txPath(l), write, tx(posting("world", "b", 9, "USD")), "Idempotency-Key", "k-item")
	// Batch keys are not bound to the batch route: the same batch again replays every item.
	r = c.do("POST", txPath(l)+"/batch", write, batchOf(true,
		merge(single, "idempotency_key", "k-single"),
		merge(tx(posting("world", "b", 3, "USD")), "idempotency_key", "k-item"),
	))
	requireResults(t, r, []itemWant{{200, "", ""}, {200, "", ""}})
	// An atomic batch that reuses a key fails whole, at that item.
	before := c.snapshot(l, batchAccounts...)
	r = c.expect(422, "idempotency_key_reused", "POST", txPath(l)+"/batch", write, batchOf(true,
		merge(tx(posting("world", "c", 1, "USD")), "idempotency_key", "k-new"),
		merge(tx(posting("world", "c", 1, "USD")), "idempotency_key", "k-single"),
	))
	if num(t, r.JSON()["index"]) != 1 {
		t.Fatalf("index: %s", r.Body)
	}
	c.unchanged(l, before)
	// …and its successful items' keys were not stored.
	c.expect(201, "", "POST", txPath(l), write, tx(posting("world", "c", 2, "USD")), "Idempotency-Key", "k-new")

	// A stored rejection of an item replays in a later batch and as a single post.
	r = c.do("POST", txPath(l)+"/batch", write, batchOf(false, merge(tx(posting("c", "a", 1000, "USD")), "idempotency_key", "k-poor")))
	requireResults(t, r, []itemWant{{422, "insufficient_funds", ""}})
	c.fund(l, "world", "c", 5000, "USD")
	r = c.expect(422, "insufficient_funds", "POST", txPath(l), write, tx(posting("c", "a", 1000, "USD")), "Idempotency-Key", "k-poor")
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("stored rejection replayed without the header")
	}
	res = requireResults(t, c.do("POST", txPath(l)+"/batch", write, batchOf(false, merge(tx(posting("c", "a", 1000, "USD")), "idempotency_key", "k-poor"))),
		[]itemWant{{422, "insufficient_funds", ""}})
	if res[0]["replayed"] != true {
		t.Fatalf("item replay not marked: %v", res[0])
	}
}
