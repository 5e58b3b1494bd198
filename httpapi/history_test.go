package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of balance history and statements (docs/api.md §Time):
// both are checked against a replay of the transaction log.

// dxHistory builds a history on d touching accounts a, b, c and late
// (created midway) with every kind of transaction: single and
// multi-posting transfers, batches (whose items share one commit), holds
// that are captured partly, voided and expired, and a reversal.
func dxHistory(d *dx) {
	t := d.t
	t.Helper()
	d.acct("world", "USD", nil)
	for _, id := range []string{"a", "b", "c"} {
		d.acct(id, "USD", dxMin(-10_000))
	}
	d.xfer("world", "a", 1000, "USD")
	d.xfer("world", "b", 500, "USD")
	spent := d.xfer("a", "b", 100, "USD")
	batch := func(atomic bool, items ...map[string]any) {
		t.Helper()
		r := d.must(200, "", "POST", d.path("/transactions/batch"), dxAdmin, map[string]any{"atomic": atomic, "transactions": items})
		if strings.Contains(string(r.Body), `"error"`) {
			t.Fatalf("batch: %s", r.Body)
		}
	}
	one := func(ps ...map[string]any) map[string]any { return dxBody(ps) }
	batch(false,
		one(dxP("world", "a", 10, "USD")),
		one(dxP("a", "b", 20, "USD")),
		one(dxP("b", "c", 5, "USD")),
		one(dxP("a", "b", 3, "USD"), dxP("c", "a", 2, "USD"), dxP("world", "a", 1, "USD")),
		one(dxP("world", "c", 7, "USD")))
	h := d.hold(0, dxP("a", "b", 50, "USD"), dxP("c", "a", 9, "USD"))
	d.xfer("b", "a", 4, "USD")
	d.actOK(h.ID, "post", map[string]any{"amounts": []int64{30, 0}})
	v := d.hold(3600, dxP("a", "c", 40, "USD"))
	d.actOK(v.ID, "void", nil)
	d.acct("late", "USD", dxMin(0))
	d.xfer("world", "late", 70, "USD")
	d.post(dxBody([]map[string]any{dxP("late", "a", 20, "USD"), dxP("a", "b", 1, "USD")}))
	d.actOK(spent.ID, "reverse", nil)
	e := d.hold(1, dxP("a", "b", 5, "USD"), dxP("b", "late", 6, "USD"))
	d.waitFor("the hold to expire", func() bool { return d.tx(e.ID).Status == "expired" })
	batch(true,
		one(dxP("world", "b", 9, "USD")),
		one(dxP("b", "a", 4, "USD")),
		one(dxP("late", "c", 3, "USD")))
	d.xfer("a", "c", 1, "USD")
}

// dxRequireKeys fails unless m has exactly the members want.
func dxRequireKeys(tb testing.TB, what string, m map[string]any, want ...string) {
	tb.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("%s has members %q, want %q", what, got, want)
	}
}

type dxBalanceAt struct {
	Account string `json:"account"`
	Asset   string `json:"asset"`
	At      string `json:"at"`
	Posted  int64  `json:"posted"`
	Version int64  `json:"version"`
}

func (d *dx) balanceAt(account string, at string) dxBalanceAt {
	d.t.Helper()
	r := d.must(200, "", "GET", d.path("/accounts/"+account+"/balance?at="+url.QueryEscape(at)), dxAdmin, nil)
	dxRequireKeys(d.t, "balance", r.JSON(), "account", "asset", "at", "posted", "version")
	return dxDecode[dxBalanceAt](d.t, r)
}

// dxDistinctTimes returns the distinct created_at of the log, in order.
func dxDistinctTimes(tb testing.TB, log []dxTx) []time.Time {
	var out []time.Time
	for _, x := range log {
		at := x.at(tb)
		if len(out) == 0 || !at.Equal(out[len(out)-1]) {
			out = append(out, at)
		}
	}
	return out
}

// TestBalanceAt: balance?at= agrees with a replay of the log at every
// created_at (inclusive), one microsecond either side of each, inside a
// batch's commit and at a dozen random instants; before the account
// existed it is 0/0; future, missing or malformed instants are 422 and an
// unknown account 404.
func TestBalanceAt(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "balanceat", ledgertest.Options{})
	dxHistory(d)
	log := d.txs()
	accounts := []string{"world", "a", "b", "c", "late"}

	times := dxDistinctTimes(t, log)
	if len(times) == len(log) {
		t.Fatalf("no two transactions share a created_at: the batches should")
	}
	first, last := times[0], times[len(times)-1]
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	instants := []time.Time{first.Add(-time.Microsecond), first.Add(-time.Hour), last.Add(time.Microsecond)}
	for _, at := range times {
		instants = append(instants, at, at.Add(-time.Microsecond), at.Add(time.Microsecond))
	}
	for range 12 {
		span := last.Sub(first).Microseconds()
		instants = append(instants, first.Add(time.Duration(rng.Int64N(span+1))*time.Microsecond))
	}
	lateCreated := dxTime(t, d.account("late").CreatedAt)
	for _, at := range instants {
		books := dxReplay(t, log, func(x dxTx) bool { return !x.at(t).After(at) })
		for _, id := range accounts {
			want := books[id]
			if want == nil {
				want = &dxBook{}
			}
			got := d.balanceAt(id, dxFormat(at))
			if got.Account != id || got.Asset != "USD" || got.At != dxFormat(at) {
				t.Fatalf("balance of %s at %s: %+v", id, dxFormat(at), got)
			}
			if got.Posted != want.Posted || got.Version != want.Version {
				t.Fatalf("balance of %s at %s: posted %d version %d, the log replays to posted %d version %d",
					id, dxFormat(at), got.Posted, got.Version, want.Posted, want.Version)
			}
			if id == "late" && at.Before(lateCreated) && (got.Posted != 0 || got.Version != 0) {
				t.Fatalf("late before it existed: %+v", got)
			}
		}
	}
	// The same instant written with an offset, and with nanoseconds that
	// stay within the same microsecond.
	mid := times[len(times)/2]
	want := d.balanceAt("a", dxFormat(mid))
	for _, s := range []string{
		mid.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano),
		mid.In(time.FixedZone("", -7*3600)).Format(time.RFC3339Nano),
		mid.UTC().Add(999 * time.Nanosecond).Format(time.RFC3339Nano),
	} {
		if got := d.balanceAt("a", s); got.Posted != want.Posted || got.Version != want.Version {
			t.Fatalf("balance at %s: %+v, at %s: %+v", s, got, dxFormat(mid), want)
		}
	}
	// At the last transaction, the balance is the account's current one.
	for _, id := range accounts {
		a := d.account(id)
		if got := d.balanceAt(id, dxFormat(last)); got.Posted != a.Balance.Posted || got.Version != a.Version {
			t.Fatalf("%s at the last transaction: %+v, now %+v version %d", id, got, a.Balance, a.Version)
		}
	}

	read := d.key("read")
	base := d.path("/accounts/a/balance")
	d.must(200, "", "GET", base+"?at="+url.QueryEscape(dxFormat(last)), read, nil)
	for _, q := range []string{"", "?at=", "?at=yesterday", "?at=2026-01-01", "?at=1700000000",
		"?at=" + url.QueryEscape(dxFormat(time.Now().Add(time.Hour))),
		"?at=" + url.QueryEscape(time.Now().Add(24*time.Hour).Format(time.RFC3339)),
		"?at=9999-12-31T23:59:59Z"} {
		r := d.do("GET", base+q, read, nil)
		if err := dxIs(r, 422, "validation_failed"); err != nil || !strings.Contains(string(r.Body), `"field":"at"`) {
			t.Fatalf("balance%s: %d %s, want 422 naming at", q, r.Status, r.Body)
		}
	}
	at := "?at=" + url.QueryEscape(dxFormat(last))
	for _, id := range []string{"ghost", "A", "bad%20id", "_x", strings.Repeat("x", 129)} {
		d.must(404, "not_found", "GET", d.path("/accounts/"+id+"/balance"+at), read, nil)
	}
	d.must(422, "validation_failed", "GET", d.path("/accounts/ghost/balance?at=never"), read, nil)
	other := &dx{t: t, e: d.e, l: "other"}
	d.must(201, "", "POST", "/v1/ledgers", dxAdmin, map[string]any{"name": "other"})
	d.must(404, "not_found", "GET", base+at, other.key("admin"), nil)
	d.must(404, "not_found", "GET", other.path("/accounts/a/balance"+at), dxAdmin, nil)
}

type dxLine struct {
	TransactionID string `json:"transaction_id"`
	Sequence      int64  `json:"sequence"`
	Amount        int64  `json:"amount"`
	BalanceAfter  int64  `json:"balance_after"`
	CreatedAt     string `json:"created_at"`
}

type dxStatement struct {
	Data           []dxLine `json:"data"`
	OpeningBalance int64    `json:"opening_balance"`
	ClosingBalance int64    `json:"closing_balance"`
	NextCursor     *string  `json:"next_cursor"`
}

// statement walks every page of an account's statement; every page must
// carry the same opening and closing balances.
func (d *dx) statement(account, query string, limit int) dxStatement {
	d.t.Helper()
	base := d.path(fmt.Sprintf("/accounts/%s/entries?limit=%d%s", account, limit, query))
	var all dxStatement
	p := base
	for pages := 0; ; pages++ {
		if pages > 1000 {
			d.t.Fatalf("statement %s: too many pages", base)
		}
		r := d.must(200, "", "GET", p, dxAdmin, nil)
		dxRequireKeys(d.t, "statement", r.JSON(), "data", "opening_balance", "closing_balance", "next_cursor")
		s := dxDecode[dxStatement](d.t, r)
		if len(s.Data) > limit {
			d.t.Fatalf("statement %s: %d lines on a page of %d", p, len(s.Data), limit)
		}
		if pages == 0 {
			all.OpeningBalance, all.ClosingBalance = s.OpeningBalance, s.ClosingBalance
		} else if s.OpeningBalance != all.OpeningBalance || s.ClosingBalance != all.ClosingBalance {
			d.t.Fatalf("statement %s: page %d has opening %d closing %d, the first page %d %d",
				base, pages, s.OpeningBalance, s.ClosingBalance, all.OpeningBalance, all.ClosingBalance)
		}
		all.Data = append(all.Data, s.Data...)
		if s.NextCursor == nil {
			return all
		}
		if len(s.Data) == 0 {
			d.t.Fatalf("statement %s: an empty page with a cursor", p)
		}
		p = base + "&cursor=" + url.QueryEscape(*s.NextCursor)
	}
}

// dxExpectedLines is the statement of account replayed from the log: one
// line per posting of a transaction that moved posted balances.
func dxExpectedLines(tb testing.TB, log []dxTx, account string) []dxLine {
	var out []dxLine
	var bal int64
	for _, x := range log {
		if !x.movesPosted() {
			continue
		}
		for _, p := range x.Postings {
			var amt int64
			switch account {
			case p.Source:
				amt = -p.Amount
			case p.Destination:
				amt = p.Amount
			default:
				continue
			}
			bal += amt
			out = append(out, dxLine{TransactionID: x.ID, Sequence: x.Sequence, Amount: amt, BalanceAfter: bal, CreatedAt: x.CreatedAt})
		}
	}
	return out
}

// TestStatement: statement lines are the postings that moved posted
// (captures and reversals, not holds, voids or expiries) with running
// balances that agree with the log and with balance?at; opening + lines =
// closing for every range (from inclusive, to exclusive); pages of any
// size give the same lines and the same opening and closing.
func TestStatement(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "statement", ledgertest.Options{})
	dxHistory(d)
	log := d.txs()
	byID := map[string]dxTx{}
	for _, x := range log {
		byID[x.ID] = x
	}
	times := dxDistinctTimes(t, log)
	first, last := times[0], times[len(times)-1]

	for _, account := range []string{"a", "b", "c", "late", "world"} {
		want := dxExpectedLines(t, log, account)
		full := d.statement(account, "", 1000)
		if !slices.Equal(full.Data, want) {
			t.Fatalf("statement of %s:\n got %+v\nwant %+v", account, full.Data, want)
		}
		now := d.account(account).Balance.Posted
		if full.OpeningBalance != 0 || full.ClosingBalance != now {
			t.Fatalf("statement of %s: opening %d closing %d, want 0 and %d", account, full.OpeningBalance, full.ClosingBalance, now)
		}
		kinds := map[string]bool{}
		for i, l := range full.Data {
			x := byID[l.TransactionID]
			switch {
			case x.isHold() || x.Status != "posted":
				t.Fatalf("statement of %s has a line of %+v", account, x)
			case x.PendingID != "":
				kinds["capture"] = true
			case x.Reverses != "":
				kinds["reversal"] = true
			}
			// balance?at agrees with the last line of each instant.
			if i == len(full.Data)-1 || full.Data[i+1].CreatedAt != l.CreatedAt {
				if b := d.balanceAt(account, l.CreatedAt); b.Posted != l.BalanceAfter {
					t.Fatalf("%s: the last line at %s has balance_after %d, balance?at says %d", account, l.CreatedAt, l.BalanceAfter, b.Posted)
				}
			}
		}
		if account == "a" && (!kinds["capture"] || !kinds["reversal"]) {
			t.Fatalf("a's statement lacks a capture or a reversal line: %v", kinds)
		}
		// Pages of any size.
		for _, limit := range []int{1, 2, 3, 7} {
			if got := d.statement(account, "", limit); !slices.Equal(got.Data, full.Data) ||
				got.OpeningBalance != full.OpeningBalance || got.ClosingBalance != full.ClosingBalance {
				t.Fatalf("statement of %s by pages of %d: %+v, one page: %+v", account, limit, got, full)
			}
		}
	}

	// Ranges: from inclusive, to exclusive; opening and closing are the
	// balances just before each end.
	bounds := []time.Time{first.Add(-time.Hour), first, times[2], times[2].Add(time.Microsecond), times[len(times)/2],
		times[len(times)/2].Add(-time.Microsecond), last, last.Add(time.Microsecond)}
	for _, account := range []string{"a", "b", "late"} {
		all := dxExpectedLines(t, log, account)
		before := func(at time.Time) int64 {
			var bal int64
			for _, l := range all {
				if dxTime(t, l.CreatedAt).Before(at) {
					bal = l.BalanceAfter
				}
			}
			return bal
		}
		check := func(from, to *time.Time, limits ...int) {
			t.Helper()
			var q string
			var want []dxLine
			for _, l := range all {
				at := dxTime(t, l.CreatedAt)
				if (from == nil || !at.Before(*from)) && (to == nil || at.Before(*to)) {
					want = append(want, l)
				}
			}
			opening, closing := int64(0), d.account(account).Balance.Posted
			if from != nil {
				q += "&from=" + url.QueryEscape(dxFormat(*from))
				opening = before(*from)
			}
			if to != nil {
				q += "&to=" + url.QueryEscape(dxFormat(*to))
				closing = before(*to)
			}
			if from != nil && to != nil && !to.After(*from) {
				want, closing = nil, opening
			}
			for _, limit := range limits {
				got := d.statement(account, q, limit)
				if !slices.Equal(got.Data, want) || got.OpeningBalance != opening || got.ClosingBalance != closing {
					t.Fatalf("statement of %s%s (limit %d):\n got %+v\nwant %+v opening %d closing %d", account, q, limit, got, want, opening, closing)
				}
				sum := got.OpeningBalance
				for _, l := range got.Data {
					sum += l.Amount
				}
				if sum != got.ClosingBalance {
					t.Fatalf("statement of %s%s: opening %d + lines ≠ closing %d", account, q, got.OpeningBalance, got.ClosingBalance)
				}
			}
		}
		for i := range bounds {
			from := bounds[i]
			check(&from, nil, 1000)
			check(nil, &from, 1000)
			for j := i + 1; j < len(bounds); j++ {
				to := bounds[j]
				check(&from, &to, 1000)
			}
		}
		mid, end := times[len(times)/2], last
		check(&times[1], &end, 1, 2, 1000)
		check(&mid, nil, 1, 3)
	}

	// Bad input.
	d.must(404, "not_found", "GET", d.path("/accounts/ghost/entries"), dxAdmin, nil)
	d.must(404, "not_found", "GET", d.path("/accounts/bad%20id/entries"), dxAdmin, nil)
	// A cursor whose posting index exceeds a smallint was a 500.
	bigIndex := base64.RawURLEncoding.EncodeToString([]byte("1:32768"))
	hugeIndex := base64.RawURLEncoding.EncodeToString([]byte("1:2147483648"))
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%21%21", "cursor=eA", "cursor=" + bigIndex, "cursor=" + hugeIndex,
		"from=yesterday", "to=2026-01-01"} {
		r := d.do("GET", d.path("/accounts/a/entries?"+q), dxAdmin, nil)
		if err := dxIs(r, 422, "validation_failed"); err != nil || !strings.Contains(string(r.Body), `"field":"`+strings.SplitN(q, "=", 2)[0]) {
			t.Fatalf("entries?%s: %d %s, want 422 naming the parameter", q, r.Status, r.Body)
		}
	}
}
