package httpapi_test

import (
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestPostTransaction(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("post")
	write := c.key(l, "write")
	c.account(l, "world", "USD", nil)
	c.account(l, "alice", "USD", ledgertest.Int64(0))
	c.account(l, "bob", "USD", ledgertest.Int64(0))
	c.account(l, "eur-world", "EUR", nil)
	c.account(l, "eur-alice", "EUR", ledgertest.Int64(0))

	body := map[string]any{
		"postings": []any{
			posting("world", "alice", 1500, "USD"),
			posting("alice", "bob", 200, "USD"),
			posting("eur-world", "eur-alice", 7, "EUR"),
		},
		"metadata":  map[string]any{"order": "A-17", "z": "last"},
		"reference": "psp-ch_123",
	}
	r := c.expect(201, "", "POST", txPath(l), write, body)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a fresh post is marked replayed")
	}
	m := r.JSON()
	requireKeys(t, "transaction", m, "id", "sequence", "status", "postings", "metadata", "reference", "created_at")
	if str(m, "id") == "" || num(t, m["sequence"]) != 1 || str(m, "status") != "posted" || str(m, "reference") != "psp-ch_123" {
		t.Fatalf("transaction: %s", r.Body)
	}
	if compact(t, m["postings"]) != compact(t, body["postings"]) {
		t.Fatalf("postings %v, want %v", m["postings"], body["postings"])
	}
	if compact(t, m["metadata"]) != `{"order":"A-17","z":"last"}` {
		t.Fatalf("metadata %v", m["metadata"])
	}
	requireTime(t, "created_at", m["created_at"])

	got := c.expect(200, "", "GET", txPath(l)+"/"+str(m, "id"), c.key(l, "read"), nil).JSON()
	if compact(t, got) != compact(t, m) {
		t.Fatalf("GET %v, POST answered %v", got, m)
	}

	for id, want := range map[string][2]int64{"world": {-1500, 1}, "alice": {1300, 1}, "bob": {200, 1}, "eur-world": {-7, 1}, "eur-alice": {7, 1}} {
		a := c.getAccount(l, id)
		b := a["balance"].(map[string]any)
		if num(t, b["posted"]) != want[0] || num(t, b["available"]) != want[0] || num(t, a["version"]) != want[1] {
			t.Fatalf("%s after the transaction: %v", id, a)
		}
	}

	// Without metadata and reference: {} and null.
	m = c.expect(201, "", "POST", txPath(l), write, tx(posting("alice", "bob", 1300, "USD"))).JSON()
	if compact(t, m["metadata"]) != "{}" || m["reference"] != nil || num(t, m["sequence"]) != 2 {
		t.Fatalf("plain transaction: %v", m)
	}
	// alice may go exactly to her min_balance, not below.
	if c.posted(l, "alice") != 0 {
		t.Fatalf("alice: %d", c.posted(l, "alice"))
	}
	// Optional fields sent as null count as absent.
	m = c.expect(201, "", "POST", txPath(l), write,
		`{"postings":[{"source":"world","destination":"alice","amount":1,"asset":"USD"}],"metadata":null,"reference":null,"pending":null,"pending_timeout_seconds":null}`).JSON()
	if compact(t, m["metadata"]) != "{}" || m["reference"] != nil || str(m, "status") != "posted" {
		t.Fatalf("null optionals: %v", m)
	}
	// The extreme amount.
	c.expect(201, "", "POST", txPath(l), write, tx(posting("world", "bob", int64(math.MaxInt64)-1500, "USD")))
	requireDoubleEntry(c, l, "USD")
	requireDoubleEntry(c, l, "EUR")
}

// requireDoubleEntry is invariant 1: posted balances of an asset sum to 0.
func requireDoubleEntry(c client, l, asset string) {
	c.t.Helper()
	sum, all := new(big.Int), 0
	for _, a := range c.walk(accountsPath(l)+"?limit=1000", admin) {
		if str(a, "asset") == asset {
			sum.Add(sum, big.NewInt(num(c.t, a["balance"].(map[string]any)["posted"])))
			all++
		}
	}
	if sum.Sign() != 0 {
		c.t.Fatalf("%s balances sum to %d over %d accounts", asset, sum, all)
	}
}

// TestNetEffect: min_balance is judged on a transaction's net effect on
// each account, so an account may pass money on within one transaction.
func TestNetEffect(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("net")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	c.account(l, "b", "USD", ledgertest.Int64(0))
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("a", "b", 10, "USD"), posting("world", "a", 10, "USD")))
	if c.posted(l, "a") != 0 || c.posted(l, "b") != 10 {
		t.Fatalf("a %d, b %d", c.posted(l, "a"), c.posted(l, "b"))
	}
	before := c.snapshot(l, "world", "a", "b")
	c.expect(422, "insufficient_funds", "POST", txPath(l), admin, tx(posting("a", "b", 11, "USD"), posting("world", "a", 10, "USD")))
	// b may send its 10 to a, and a's 10 back, in one go.
	c.unchanged(l, before)
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("b", "a", 10, "USD"), posting("a", "b", 10, "USD")))
	if c.posted(l, "a") != 0 || c.posted(l, "b") != 10 {
		t.Fatalf("a %d, b %d", c.posted(l, "a"), c.posted(l, "b"))
	}
	// Pending debits count against available; pending credits do not.
	m := c.expect(201, "", "POST", txPath(l), admin, merge(tx(posting("b", "a", 6, "USD")), "pending", true, "pending_timeout_seconds", 3600)).JSON()
	if str(m, "status") != "pending" {
		t.Fatalf("hold: %v", m)
	}
	requireTime(t, "expires_at", m["expires_at"])
	bb := c.getAccount(l, "b")["balance"].(map[string]any)
	if compact(t, bb) != `{"available":4,"pending_credits":0,"pending_debits":6,"posted":10}` {
		t.Fatalf("b with a hold: %v", bb)
	}
	ab := c.getAccount(l, "a")["balance"].(map[string]any)
	if compact(t, ab) != `{"available":0,"pending_credits":6,"pending_debits":0,"posted":0}` {
		t.Fatalf("a with a hold: %v", ab)
	}
	before = c.snapshot(l, "world", "a", "b")
	c.expect(422, "insufficient_funds", "POST", txPath(l), admin, tx(posting("b", "world", 5, "USD")))
	c.expect(422, "insufficient_funds", "POST", txPath(l), admin, tx(posting("a", "world", 1, "USD")))
	c.unchanged(l, before)
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("b", "world", 4, "USD")))
	// A hold without a timeout never expires: no expires_at.
	m = c.expect(201, "", "POST", txPath(l), admin, merge(tx(posting("world", "a", 1, "USD")), "pending", true)).JSON()
	if _, ok := m["expires_at"]; ok || str(m, "status") != "pending" {
		t.Fatalf("hold without timeout: %v", m)
	}
}

// TestBusinessRejections: each business rule's code, and invariant 7 —
// nothing changes.
func TestBusinessRejections(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("biz")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", ledgertest.Int64(0))
	c.account(l, "od", "USD", ledgertest.Int64(-50))
	c.account(l, "eur", "EUR", ledgertest.Int64(0))
	c.account(l, "eur-world", "EUR", nil)
	first := c.expect(201, "", "POST", txPath(l), admin, merge(tx(posting("world", "a", 100, "USD")), "reference", "ref-1")).JSON()
	accounts := []string{"world", "a", "od", "eur", "eur-world", "ghost"}

	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"unknown source", tx(posting("ghost", "a", 1, "USD")), 422, "account_not_found"},
		{"unknown destination", tx(posting("a", "ghost", 1, "USD")), 422, "account_not_found"},
		{"unknown in a later posting", tx(posting("world", "a", 1, "USD"), posting("a", "ghost", 1, "USD")), 422, "account_not_found"},
		{"id differs in case", tx(posting("World", "a", 1, "USD")), 422, "account_not_found"},
		{"asset of neither account", tx(posting("world", "a", 1, "GBP")), 422, "asset_mismatch"},
		{"asset of the source only", tx(posting("eur", "a", 1, "EUR")), 422, "asset_mismatch"},
		{"asset of the destination only", tx(posting("eur-world", "a", 1, "USD")), 422, "asset_mismatch"},
		{"insufficient", tx(posting("a", "world", 101, "USD")), 422, "insufficient_funds"},
		{"insufficient over two postings", tx(posting("a", "world", 60, "USD"), posting("a", "od", 41, "USD")), 422, "insufficient_funds"},
		{"overdraft beyond min_balance", tx(posting("od", "world", 51, "USD")), 422, "insufficient_funds"},
		{"a later posting fails", tx(posting("world", "a", 5, "USD"), posting("a", "world", 200, "USD")), 422, "insufficient_funds"},
		{"insufficient hold", merge(tx(posting("a", "world", 101, "USD")), "pending", true), 422, "insufficient_funds"},
		{"duplicate reference", merge(tx(posting("world", "a", 1, "USD")), "reference", "ref-1"), 409, "duplicate_reference"},
		{"overflow of the destination", tx(posting("world", "a", math.MaxInt64, "USD")), 422, "validation_failed"},
		{"overflow within one transaction", tx(posting("world", "od", math.MaxInt64, "USD"), posting("world", "od", math.MaxInt64, "USD")), 422, "validation_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, accounts...)
			r := c.expect(tc.status, tc.code, "POST", txPath(l), admin, tc.body)
			if tc.code == "duplicate_reference" && str(r.JSON(), "transaction_id") != str(first, "id") {
				t.Fatalf("duplicate_reference names %q, want %q: %s", str(r.JSON(), "transaction_id"), str(first, "id"), r.Body)
			}
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("a rejection without a key is marked replayed")
			}
			c.unchanged(l, before)
		})
	}
	// The overdraft account may go to its minimum exactly.
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("od", "world", 50, "USD")))
	// An account below its minimum (after the limit was raised) may still receive.
	c.expect(200, "", "PATCH", accountsPath(l)+"/od", admin, map[string]any{"min_balance": 0})
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("world", "od", 1, "USD")))
	c.expect(422, "insufficient_funds", "POST", txPath(l), admin, tx(posting("od", "world", 1, "USD")))
	// References are per ledger.
	l2 := c.ledger("biz2")
	c.account(l2, "world", "USD", nil)
	c.account(l2, "a", "USD", nil)
	c.expect(201, "", "POST", txPath(l2), admin, merge(tx(posting("world", "a", 1, "USD")), "reference", "ref-1"))
	requireDoubleEntry(c, l, "USD")
}

func TestGetTransactionNotFound(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l, other := c.ledger("get"), c.ledger("other")
	for _, x := range []string{l, other} {
		c.account(x, "world", "USD", nil)
		c.account(x, "a", "USD", nil)
	}
	id := str(c.fund(other, "world", "a", 1, "USD"), "id")
	own := str(c.fund(l, "world", "a", 1, "USD"), "id")
	read := c.key(l, "read")
	c.expect(200, "", "GET", txPath(l)+"/"+own, read, nil)
	for _, bad := range []string{
		id, // another ledger's transaction
		"00000000-0000-7000-8000-000000000000",
		"not-a-uuid",
		"1",
		"0",
		strings.ToUpper(own) + "0",
		own[:35],
		own + "0",
		"{" + own + "}",
		"urn:uuid:" + own,
		strings.ReplaceAll(own, "-", ""),
		url.PathEscape("'; DROP TABLE transactions; --"),
		url.PathEscape("%00"),
		strings.Repeat("f", 5000),
	} {
		c.expect(404, "not_found", "GET", txPath(l)+"/"+bad, read, nil)
	}
}

func TestListTransactions(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("list")
	read := c.key(l, "read")
	c.account(l, "world", "USD", nil)
	for _, id := range []string{"a", "b", "c"} {
		c.account(l, id, "USD", nil)
	}
	var posted []map[string]any
	for i := 0; i < 12; i++ {
		body := tx(posting("world", []string{"a", "b", "c"}[i%3], int64(i+1), "USD"))
		if i%4 == 0 {
			body["reference"] = fmt.Sprintf("ref-%d", i)
		}
		if i == 7 {
			body = tx(posting("a", "b", 1, "USD"), posting("world", "c", 1, "USD"))
		}
		posted = append(posted, c.expect(201, "", "POST", txPath(l), admin, body).JSON())
		// A rejection in between leaves no gap.
		c.expect(422, "account_not_found", "POST", txPath(l), admin, tx(posting("world", "ghost", 1, "USD")))
	}
	for i, m := range posted {
		if num(t, m["sequence"]) != int64(i+1) {
			t.Fatalf("transaction %d has sequence %v", i, m["sequence"])
		}
	}

	m := c.expect(200, "", "GET", txPath(l), read, nil).JSON()
	requireKeys(t, "list", m, "data", "next_cursor")
	all := c.walk(txPath(l)+"?limit=1000", read)
	if len(all) != len(posted) {
		t.Fatalf("listed %d of %d", len(all), len(posted))
	}
	for i := range all {
		if compact(t, all[i]) != compact(t, posted[i]) {
			t.Fatalf("listed %v, posted %v", all[i], posted[i])
		}
		if i > 0 && str(all[i], "created_at") < str(all[i-1], "created_at") {
			t.Fatalf("created_at decreases at sequence %d", i+1)
		}
	}
	seqs := func(items []map[string]any) []int64 {
		out := make([]int64, len(items))
		for i, it := range items {
			out[i] = num(t, it["sequence"])
		}
		return out
	}
	where := func(keep func(m map[string]any) bool) []int64 {
		var out []int64
		for _, m := range all {
			if keep(m) {
				out = append(out, num(t, m["sequence"]))
			}
		}
		return out
	}
	touches := func(acct string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			for _, p := range m["postings"].([]any) {
				p := p.(map[string]any)
				if str(p, "source") == acct || str(p, "destination") == acct {
					return true
				}
			}
			return false
		}
	}

	check := func(query string, want []int64) {
		t.Helper()
		for _, limit := range []int{1, 2, 5, 1000} {
			got := seqs(c.walk(fmt.Sprintf("%s?limit=%d&%s", txPath(l), limit, query), read))
			if !slices.Equal(got, want) {
				t.Fatalf("%s (limit %d): sequences %v, want %v", query, limit, got, want)
			}
		}
	}
	check("", where(func(map[string]any) bool { return true }))
	for _, acct := range []string{"a", "b", "c", "world"} {
		check("account="+acct, where(touches(acct)))
	}
	check("account=ghost", nil)
	check("reference=ref-4", []int64{5})
	check("reference=ref-5", nil)
	check("reference=ref-4&account=b", []int64{5})
	check("reference=ref-4&account=a", nil)
	for _, after := range []int64{0, 1, 6, 11, 12, 100} {
		check(fmt.Sprintf("after=%d", after), where(func(m map[string]any) bool { return num(t, m["sequence"]) > after }))
		check(fmt.Sprintf("after=%d&account=a", after), where(func(m map[string]any) bool {
			return num(t, m["sequence"]) > after && touches("a")(m)
		}))
	}
	// Time ranges: from inclusive, to exclusive.
	times := []string{"2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"}
	for _, i := range []int{0, 1, 5, 11} {
		times = append(times, str(all[i], "created_at"))
	}
	for _, from := range times {
		for _, to := range times {
			q := url.Values{"from": {from}, "to": {to}}
			check(q.Encode(), where(func(m map[string]any) bool {
				at := str(m, "created_at")
				return at >= from && at < to
			}))
		}
		check(url.Values{"from": {from}}.Encode(), where(func(m map[string]any) bool { return str(m, "created_at") >= from }))
		check(url.Values{"to": {from}}.Encode(), where(func(m map[string]any) bool { return str(m, "created_at") < from }))
		check(url.Values{"from": {from}, "account": {"c"}}.Encode(), where(func(m map[string]any) bool {
			return str(m, "created_at") >= from && touches("c")(m)
		}))
	}

	r := c.expect(200, "", "GET", txPath(l)+"?after=12", read, nil)
	if !strings.Contains(string(r.Body), `"data":[]`) || !strings.Contains(string(r.Body), `"next_cursor":null`) {
		t.Fatalf("empty list: %s", r.Body)
	}
	for _, q := range []string{"limit=1001", "limit=0", "limit=x", "after=-1", "after=x", "after=1.5",
		"from=yesterday", "to=2026-13-01T00:00:00Z", "from=2026-01-01", "account=bad%20id", "account=_x", "cursor=%21", "cursor=eA"} {
		requireField(t, c.do("GET", txPath(l)+"?"+q, read, nil), strings.SplitN(q, "=", 2)[0])
	}
}
