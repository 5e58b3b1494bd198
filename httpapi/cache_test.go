package httpapi_test

import (
	"bytes"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of response caching: ETag and If-None-Match on account and
// transaction reads, and the cache of immutable transactions.

// etagOf reads path and returns its answer and ETag (which must be set).
func (d *dx) etagOf(path string) (*ledgertest.Response, string) {
	d.t.Helper()
	r := d.must(200, "", "GET", path, dxAdmin, nil)
	tag := r.Header.Get("ETag")
	if len(tag) < 3 || tag[len(tag)-1] != '"' || (tag[0] != '"' && tag[:3] != `W/"`) {
		d.t.Fatalf("GET %s: ETag %q is not an entity tag", path, tag)
	}
	return r, tag
}

// notModified requires a 304 with an empty body for If-None-Match inm.
func (d *dx) notModified(path, inm, tag string) {
	d.t.Helper()
	r := d.do("GET", path, dxAdmin, nil, "If-None-Match", inm)
	if r.Status != 304 || len(r.Body) != 0 {
		d.t.Fatalf("GET %s with If-None-Match %s: %d %q, want 304 and no body", path, inm, r.Status, r.Body)
	}
	if got := r.Header.Get("ETag"); got != tag {
		d.t.Fatalf("GET %s: 304 with ETag %q, want %q", path, got, tag)
	}
}

// modified requires a 200 with the current representation for an
// If-None-Match that no longer matches.
func (d *dx) modified(path, inm string) *ledgertest.Response {
	d.t.Helper()
	r := d.do("GET", path, dxAdmin, nil, "If-None-Match", inm)
	if r.Status != 200 || len(r.Body) == 0 || r.Header.Get("ETag") == inm {
		d.t.Fatalf("GET %s with the stale If-None-Match %s: %d %s (ETag %s)", path, inm, r.Status, r.Body, r.Header.Get("ETag"))
	}
	return r
}

// TestETagAccount: an account read carries an ETag, answers 304 with an
// empty body while nothing changed, and a new ETag (200 for the old one)
// after a posting or a metadata PATCH. Balances are never served stale.
func TestETagAccount(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "etagacct", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	p := d.path("/accounts/alice")

	r1, tag1 := d.etagOf(p)
	for _, inm := range []string{tag1, "W/" + tag1, `"nope", ` + tag1, "*"} {
		d.notModified(p, inm, tag1)
	}
	d.must(200, "", "GET", p, dxAdmin, nil, "If-None-Match", `"nope"`)
	if r, tag := d.etagOf(p); tag != tag1 || !bytes.Equal(r.Body, r1.Body) {
		t.Fatalf("unchanged account read twice: %s %s, then %s %s", tag1, r1.Body, tag, r.Body)
	}

	// A posting changes the balance, hence the ETag.
	d.xfer("world", "alice", 10, "USD")
	r := d.modified(p, tag1)
	if a := dxDecode[dxAccount](t, r); a.Balance.Posted != 10 || a.Version != 1 {
		t.Fatalf("account after a posting: %s", r.Body)
	}
	tag2 := r.Header.Get("ETag")
	d.notModified(p, tag2, tag2)
	// So does a hold (pending totals only).
	d.hold(0, dxP("alice", "world", 3, "USD"))
	tag3 := d.modified(p, tag2).Header.Get("ETag")
	// And a metadata PATCH.
	d.must(200, "", "PATCH", p, dxAdmin, map[string]any{"metadata": map[string]string{"tier": "gold"}})
	r = d.modified(p, tag3)
	if a := dxDecode[dxAccount](t, r); a.Metadata["tier"] != "gold" || a.Balance.PendingDebits != 3 {
		t.Fatalf("account after a PATCH: %s", r.Body)
	}
	d.notModified(p, r.Header.Get("ETag"), r.Header.Get("ETag"))
	for _, old := range []string{tag1, tag2, tag3} {
		d.modified(p, old)
	}
}

// TestETagTransaction: a transaction read carries an ETag and answers 304;
// a transaction that can still change (a pending hold, a posted
// transaction not yet reversed, a capture) gets a new representation when
// it does, on every node; an immutable one (a voided hold, a void) is
// served identically every time.
func TestETagTransaction(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "etagtx", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.xfer("world", "alice", 1000, "USD")

	// A hold read on both nodes, then voided on one of them.
	h := d.hold(0, dxP("alice", "world", 5, "USD"))
	ph := d.txURL(h.ID)
	_, tagPending := d.etagOf(ph)
	_, tagPending2 := d2.etagOf(d2.txURL(h.ID))
	if tagPending != tagPending2 {
		t.Fatalf("two nodes tag one representation differently: %s, %s", tagPending, tagPending2)
	}
	d.notModified(ph, tagPending, tagPending)
	v := d.actOK(h.ID, "void", nil)
	for _, n := range []*dx{d2, d} { // the other node first
		r := n.modified(n.txURL(h.ID), tagPending)
		if x := dxDecode[dxTx](t, r); x.Status != "voided" || x.ResolvedBy != v.ID {
			t.Fatalf("voided hold as read: %s", r.Body)
		}
	}
	// Now immutable: served identically (from the cache or not).
	for _, id := range []string{h.ID, v.ID} {
		for _, n := range []*dx{d, d2} {
			p := n.txURL(id)
			r1, tag1 := n.etagOf(p)
			r2, tag2 := n.etagOf(p)
			if tag1 != tag2 || !bytes.Equal(r1.Body, r2.Body) {
				t.Fatalf("immutable %s read twice: %s %s, then %s %s", id, tag1, r1.Body, tag2, r2.Body)
			}
			if r1.Header.Get("Content-Type") != "application/json" || r2.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("immutable %s: Content-Type %q, %q", id, r1.Header.Get("Content-Type"), r2.Header.Get("Content-Type"))
			}
			n.notModified(p, tag1, tag1)
		}
	}

	// A posted transaction changes once when reversed.
	x := d.xfer("alice", "world", 7, "USD")
	px := d.txURL(x.ID)
	_, tagX := d2.etagOf(d2.txURL(x.ID))
	d.etagOf(px)
	d.notModified(px, tagX, tagX)
	rv := d.actOK(x.ID, "reverse", nil)
	for _, n := range []*dx{d2, d} {
		r := n.modified(n.txURL(x.ID), tagX)
		if got := dxDecode[dxTx](t, r); got.ReversedBy != rv.ID {
			t.Fatalf("reversed transaction as read: %s", r.Body)
		}
	}

	// A capture can still be reversed: it is not frozen when first read.
	h2 := d.hold(0, dxP("alice", "world", 9, "USD"))
	c := d.actOK(h2.ID, "post", nil)
	_, tagC := d.etagOf(d.txURL(c.ID))
	d2.etagOf(d2.txURL(c.ID))
	rc := d.actOK(c.ID, "reverse", nil)
	for _, n := range []*dx{d, d2} {
		r := n.modified(n.txURL(c.ID), tagC)
		if got := dxDecode[dxTx](t, r); got.ReversedBy != rc.ID || got.PendingID != h2.ID {
			t.Fatalf("reversed capture as read: %s", r.Body)
		}
	}

	// The cache is per ledger: another ledger does not see the id.
	d.must(201, "", "POST", "/v1/ledgers", dxAdmin, map[string]any{"name": "other"})
	other := &dx{t: t, e: d.e, l: "other"}
	for _, id := range []string{h.ID, v.ID} {
		d.must(404, "not_found", "GET", other.txURL(id), dxAdmin, nil)
		d.must(404, "not_found", "GET", d.txURL(id), other.key("admin"), nil)
	}
	d.must(401, "unauthorized", "GET", d.txURL(h.ID), "", nil, "If-None-Match", "*")
}
