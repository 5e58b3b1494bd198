package httpapi_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of reversals (docs/api.md §Reversals).

// dxInverse is what a reversal of postings must post.
func dxInverse(ps []dxPosting) []dxPosting {
	out := make([]dxPosting, len(ps))
	for i, p := range ps {
		out[i] = dxPosting{Source: p.Destination, Destination: p.Source, Amount: p.Amount, Asset: p.Asset}
	}
	return out
}

// TestReverse: a reversal inverts the original's postings, links both
// ways, carries its own reference and metadata, applies once, and honours
// Idempotency-Key (success and stored rejection replayed).
func TestReverse(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "reverse", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.acct("carol", "USD", dxMin(0))
	d.xfer("world", "alice", 1000, "USD")
	all := []string{"world", "alice", "bob", "carol"}

	orig := d.post(dxBody([]map[string]any{dxP("alice", "bob", 300, "USD"), dxP("alice", "carol", 200, "USD")},
		"metadata", map[string]string{"order": "A-1"}, "reference", "pay-1"))
	rv := d.actOK(orig.ID, "reverse", map[string]any{})
	if rv.Reverses != orig.ID || rv.Status != "posted" || rv.ID == orig.ID || rv.Sequence != orig.Sequence+1 ||
		rv.PendingID != "" || rv.Reference != nil || len(rv.Metadata) != 0 {
		t.Fatalf("reversal: %+v", rv)
	}
	if !slices.Equal(rv.Postings, dxInverse(orig.Postings)) {
		t.Fatalf("reversal postings %+v, want the inverse of %+v", rv.Postings, orig.Postings)
	}
	now := d.tx(orig.ID)
	if now.ReversedBy != rv.ID || now.Status != "posted" || !slices.Equal(now.Postings, orig.Postings) ||
		now.Metadata["order"] != "A-1" || now.Reference == nil || *now.Reference != "pay-1" {
		t.Fatalf("reversed original: %+v", now)
	}
	if got := d.tx(rv.ID); got.Reverses != orig.ID || got.ReversedBy != "" {
		t.Fatalf("reversal as read: %+v", got)
	}
	for _, id := range []string{"alice", "bob", "carol"} {
		want := dxBalance{}
		if id == "alice" {
			want = dxBalance{Posted: 1000, Available: 1000}
		}
		if got := d.account(id).Balance; got != want {
			t.Fatalf("%s after the reversal: %+v, want %+v", id, got, want)
		}
	}

	// At most once; never a reversal.
	before := d.state(all, orig.ID, rv.ID)
	d.must(409, "invalid_state", "POST", d.txURL(orig.ID, "reverse"), dxAdmin, map[string]any{})
	d.must(409, "invalid_state", "POST", d.txURL(rv.ID, "reverse"), dxAdmin, nil)
	d.must(409, "invalid_state", "POST", d.txURL(rv.ID, "reverse"), dxAdmin, map[string]any{"force": true})
	d.unchanged("reversing twice", before, all, orig.ID, rv.ID)

	// Reference and metadata of the reversal itself.
	t2 := d.xfer("alice", "bob", 100, "USD")
	rv2 := d.actOK(t2.ID, "reverse", map[string]any{"reference": "refund-2", "metadata": map[string]string{"reason": "refund"}})
	if rv2.Reference == nil || *rv2.Reference != "refund-2" || rv2.Metadata["reason"] != "refund" || len(rv2.Metadata) != 1 {
		t.Fatalf("reversal with reference and metadata: %+v", rv2)
	}
	if got := dxWalk[dxTx](d, d.path("/transactions?reference=refund-2")); len(got) != 1 || got[0].ID != rv2.ID {
		t.Fatalf("reference=refund-2 lists %+v", got)
	}
	t3 := d.xfer("alice", "bob", 50, "USD")
	before = d.state(all, t3.ID)
	for _, ref := range []string{"refund-2", "pay-1"} {
		r := d.must(409, "duplicate_reference", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, map[string]any{"reference": ref})
		if want := map[string]string{"refund-2": rv2.ID, "pay-1": orig.ID}[ref]; r.JSON()["transaction_id"] != want {
			t.Fatalf("duplicate reference %s names %v, want %s", ref, r.JSON()["transaction_id"], want)
		}
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"metadata": map[string]any{"k": 1}}, "metadata.k"},
		{map[string]any{"metadata": "x"}, "metadata"},
		{map[string]any{"force": "yes"}, "force"},
		{map[string]any{"force": 1}, "force"},
		{map[string]any{"reference": strings.Repeat("r", 256)}, "reference"},
		{map[string]any{"reference": 7}, "reference"},
		{map[string]any{"postings": []any{}}, "postings"},
		{`{"force": true, "force": false}`, "force"},
	} {
		r := d.act(t3.ID, "reverse", dxAdmin, tc.body)
		if err := dxIs(r, 422, "validation_failed"); err != nil {
			t.Fatalf("reverse with %v: %v", tc.body, err)
		}
		if !strings.Contains(string(r.Body), `"field":"`+tc.field) {
			t.Fatalf("reverse with %v: errors do not name %s: %s", tc.body, tc.field, r.Body)
		}
	}
	d.must(400, "malformed_json", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, `{"reference":`)
	d.unchanged("rejected reversals", before, all, t3.ID)

	// Idempotency-Key: the success replays, posts nothing, and binds the
	// key to this path and body.
	body := map[string]any{"metadata": map[string]string{"why": "chargeback"}}
	rv3 := d.actOK(t3.ID, "reverse", body, "Idempotency-Key", "rev-t3")
	before = d.state(all, t3.ID, rv3.ID)
	r := d.must(200, "", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, `{"metadata":{"why":"chargeback"}}`, "Idempotency-Key", "rev-t3")
	if r.Header.Get("Idempotent-Replayed") != "true" || dxDecode[dxTx](t, r).ID != rv3.ID {
		t.Fatalf("replayed reversal: %v %s", r.Header, r.Body)
	}
	d.must(422, "idempotency_key_reused", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, map[string]any{}, "Idempotency-Key", "rev-t3")
	d.must(422, "idempotency_key_reused", "POST", d.txURL(t2.ID, "reverse"), dxAdmin, body, "Idempotency-Key", "rev-t3")
	d.must(422, "idempotency_key_reused", "POST", d.txURL(t3.ID, "void"), dxAdmin, map[string]any{}, "Idempotency-Key", "rev-t3")
	// A business rejection is stored and replayed too.
	d.must(409, "invalid_state", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, map[string]any{}, "Idempotency-Key", "rev-t3-again")
	r = d.must(409, "invalid_state", "POST", d.txURL(t3.ID, "reverse"), dxAdmin, nil, "Idempotency-Key", "rev-t3-again")
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed rejection without Idempotent-Replayed: %v", r.Header)
	}
	d.unchanged("replayed reversals", before, all, t3.ID, rv3.ID)
	d.checkLedger(false)
}

// TestReverseRace: 16 concurrent reversals of one transaction, half on each
// of two nodes, apply once (one 200, fifteen 409 invalid_state), for five
// transactions; and 8 concurrent reversals with one Idempotency-Key all
// answer the same reversal.
func TestReverseRace(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "revrace", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.xfer("world", "alice", 10_000, "USD")

	var targets []dxTx
	for i := range 5 {
		targets = append(targets, d.xfer("alice", "bob", int64(100+i), "USD"))
	}
	const n = 16
	var wg sync.WaitGroup
	answers := make([][]string, len(targets))
	winners := make([][]string, len(targets))
	errs := make(chan error, n*len(targets))
	start := make(chan struct{})
	var mu sync.Mutex
	for ti, x := range targets {
		for i := range n {
			node := []*dx{d, d2}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := node.try("POST", node.txURL(x.ID, "reverse"), dxAdmin, map[string]any{})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				answers[ti] = append(answers[ti], fmt.Sprintf("%d %s", r.Status, r.Code()))
				if r.Status == 200 {
					winners[ti] = append(winners[ti], dxDecode[dxTx](t, r).ID)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	log, _ := d.checkLedger(false)
	for ti, x := range targets {
		count := map[string]int{}
		for _, a := range answers[ti] {
			count[a]++
		}
		if count["200 "] != 1 || count["409 invalid_state"] != n-1 {
			t.Fatalf("reversals of %s answered %v, want one 200 and %d 409 invalid_state", x.ID, count, n-1)
		}
		var rs []string
		for _, y := range log {
			if y.Reverses == x.ID {
				rs = append(rs, y.ID)
			}
		}
		if !slices.Equal(rs, winners[ti]) || d.tx(x.ID).ReversedBy != rs[0] {
			t.Fatalf("%s: reversals in the log %v, answered %v", x.ID, rs, winners[ti])
		}
	}
	if a := d.account("alice").Balance; a.Posted != 10_000 {
		t.Fatalf("alice after the reversals: %+v", a)
	}

	// Same key, racing: one reversal, every answer names it.
	x := d.xfer("alice", "bob", 7, "USD")
	ids := make([]string, 8)
	errs = make(chan error, len(ids))
	start = make(chan struct{})
	for i := range ids {
		node := []*dx{d, d2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := node.try("POST", node.txURL(x.ID, "reverse"), dxAdmin, map[string]any{}, "Idempotency-Key", "once")
			if err == nil {
				err = dxIs(r, 200, "")
			}
			if err != nil {
				errs <- err
				return
			}
			ids[i] = dxDecode[dxTx](t, r).ID
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ids[0] == "" || slices.ContainsFunc(ids, func(s string) bool { return s != ids[0] }) {
		t.Fatalf("the racing replays answered %v", ids)
	}
	log, _ = d.checkLedger(false)
	if last := log[len(log)-1]; last.Reverses != x.ID || last.ID != ids[0] {
		t.Fatalf("the last transaction is %+v, want the one reversal %s", last, ids[0])
	}
}

// TestReverseInvalidState: holds (pending or resolved), voids, expiries and
// reversals cannot be reversed, and trying changes nothing; a capture can.
func TestReverseInvalidState(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "revstate", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.xfer("world", "alice", 10_000, "USD")
	all := []string{"world", "alice", "bob"}

	pending := d.hold(0, dxP("alice", "bob", 10, "USD"))
	captured := d.hold(0, dxP("alice", "bob", 20, "USD"))
	capture := d.actOK(captured.ID, "post", nil)
	voided := d.hold(0, dxP("alice", "bob", 30, "USD"))
	void := d.actOK(voided.ID, "void", nil)
	expired := d.hold(1, dxP("alice", "bob", 40, "USD"))
	d.waitFor("the hold to expire", func() bool { return d.tx(expired.ID).Status == "expired" })
	expiry := d.tx(d.tx(expired.ID).ResolvedBy)
	reversed := d.xfer("alice", "bob", 50, "USD")
	reversal := d.actOK(reversed.ID, "reverse", nil)

	cases := map[string]string{"pending hold": pending.ID, "captured hold": captured.ID, "voided hold": voided.ID,
		"void": void.ID, "expired hold": expired.ID, "expiry": expiry.ID, "reversal": reversal.ID, "reversed": reversed.ID}
	ids := []string{capture.ID}
	for _, id := range cases {
		ids = append(ids, id)
	}
	before := d.state(all, ids...)
	for what, id := range cases {
		for _, body := range []any{nil, map[string]any{}, map[string]any{"force": true}, map[string]any{"reference": "r-" + what}} {
			r := d.act(id, "reverse", dxAdmin, body)
			if err := dxIs(r, 409, "invalid_state"); err != nil {
				t.Fatalf("reversing the %s with %v: %v", what, body, err)
			}
		}
	}
	d.unchanged("reversing what cannot be reversed", before, all, ids...)
	// The capture is an ordinary posted transaction as far as reversals go.
	rc := d.actOK(capture.ID, "reverse", nil)
	if !slices.Equal(rc.Postings, dxInverse(capture.Postings)) {
		t.Fatalf("reversal of the capture: %+v", rc)
	}
	d.checkLedger(false)
}

// TestReversePartialCapture: reversing a partial capture inverts only what
// was captured, not what was held.
func TestReversePartialCapture(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "revpartial", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.acct("carol", "USD", dxMin(0))
	d.xfer("world", "alice", 10_000, "USD")

	h := d.hold(0, dxP("alice", "bob", 300, "USD"), dxP("alice", "carol", 200, "USD"), dxP("world", "bob", 50, "USD"))
	c := d.actOK(h.ID, "post", map[string]any{"amounts": []int64{120, 0, 50}})
	want := []dxPosting{{"alice", "bob", 120, "USD"}, {"world", "bob", 50, "USD"}}
	if !slices.Equal(c.Postings, want) {
		t.Fatalf("capture postings %+v, want %+v", c.Postings, want)
	}
	rv := d.actOK(c.ID, "reverse", map[string]any{})
	if want := []dxPosting{{"bob", "alice", 120, "USD"}, {"bob", "world", 50, "USD"}}; !slices.Equal(rv.Postings, want) || rv.Reverses != c.ID {
		t.Fatalf("reversal of the partial capture: %+v, want postings %+v", rv, want)
	}
	for id, want := range map[string]dxBalance{
		"alice": {Posted: 10_000, Available: 10_000},
		"bob":   {},
		"carol": {},
	} {
		if got := d.account(id).Balance; got != want {
			t.Fatalf("%s: %+v, want %+v", id, got, want)
		}
	}
	if got := d.tx(c.ID); got.ReversedBy != rv.ID || got.PendingID != h.ID {
		t.Fatalf("the reversed capture: %+v", got)
	}
	if got := d.tx(h.ID); got.Status != "captured" || got.ResolvedBy != c.ID || got.ReversedBy != "" || !slices.Equal(got.Postings, h.Postings) {
		t.Fatalf("the hold: %+v", got)
	}
	d.must(409, "invalid_state", "POST", d.txURL(h.ID, "reverse"), dxAdmin, nil)
	d.must(409, "invalid_state", "POST", d.txURL(h.ID, "void"), dxAdmin, nil)
	d.checkLedger(false)
}

// TestReverseMinBalance: a reversal obeys min_balance (judged on available,
// so pending debits count) unless a ledger admin forces it; force from a
// write key is 403 and changes nothing.
func TestReverseMinBalance(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "revmin", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.acct("carol", "USD", dxMin(0))
	d.acct("dave", "USD", dxMin(0))
	d.xfer("world", "alice", 1000, "USD")
	write := d.key("write")
	admin := d.key("admin")
	all := []string{"world", "alice", "bob", "carol", "dave"}

	pay := d.xfer("alice", "bob", 600, "USD")
	d.xfer("bob", "carol", 500, "USD") // bob spent the money
	before := d.state(all, pay.ID)
	d.must(422, "insufficient_funds", "POST", d.txURL(pay.ID, "reverse"), dxAdmin, map[string]any{})
	d.must(422, "insufficient_funds", "POST", d.txURL(pay.ID, "reverse"), write, map[string]any{"force": false})
	d.must(403, "forbidden", "POST", d.txURL(pay.ID, "reverse"), write, map[string]any{"force": true})
	d.must(403, "forbidden", "POST", d.txURL(pay.ID, "reverse"), write, map[string]any{"force": true}, "Idempotency-Key", "forced")
	d.unchanged("a reversal past min_balance", before, all, pay.ID)

	// Pending debits count: dave's 100 is held, so reversing it fails.
	gift := d.xfer("alice", "dave", 100, "USD")
	d.hold(0, dxP("dave", "carol", 100, "USD"))
	before = d.state(all, gift.ID)
	d.must(422, "insufficient_funds", "POST", d.txURL(gift.ID, "reverse"), write, nil)
	d.unchanged("a reversal of held money", before, all, gift.ID)

	// The admin forces it: bob goes below his minimum.
	r := d.must(200, "", "POST", d.txURL(pay.ID, "reverse"), admin, map[string]any{"force": true}, "Idempotency-Key", "forced")
	rv := dxDecode[dxTx](t, r)
	if rv.Reverses != pay.ID {
		t.Fatalf("forced reversal: %+v", rv)
	}
	if b := d.account("bob").Balance; b != (dxBalance{Posted: -500, Available: -500}) {
		t.Fatalf("bob after the forced reversal: %+v", b)
	}
	if a := d.account("alice").Balance; a.Posted != 900 {
		t.Fatalf("alice after the forced reversal: %+v", a)
	}
	// An account below its minimum still cannot spend, but may receive.
	d.must(422, "insufficient_funds", "POST", d.path("/transactions"), dxAdmin, dxBody([]map[string]any{dxP("bob", "carol", 1, "USD")}))
	d.xfer("carol", "bob", 1, "USD")
	d.checkLedger(true)
}
