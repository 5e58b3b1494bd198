package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of two-phase transfers (docs/api.md §Holds) and of the
// invariants of §3 with holds, captures, voids, expiries and reversals
// mixed in. This file also holds the helpers of the ledger-depth tests
// (twophase, reversal, history, cache, querycount): their names start with
// dx so that they never collide with the core tests' helpers.

const dxAdmin = ledgertest.AdminKey

// dx is one ledger seen through one test node.
type dx struct {
	t testing.TB
	e *ledgertest.Env
	l string
}

// dxNew starts a node on a fresh database and creates ledger name on it.
func dxNew(t *testing.T, name string, o ledgertest.Options) *dx {
	t.Helper()
	d := &dx{t: t, e: ledgertest.Start(t, o), l: name}
	d.must(201, "", "POST", "/v1/ledgers", dxAdmin, map[string]any{"name": name})
	return d
}

// node starts a second node on d's database and returns the same ledger
// seen through it.
func (d *dx) node(o ledgertest.Options) *dx {
	d.t.Helper()
	o.DatabaseURL = d.e.DatabaseURL
	return &dx{t: d.t, e: ledgertest.Start(d.t, o), l: d.l}
}

// path is a path under the ledger.
func (d *dx) path(p string) string { return "/v1/ledgers/" + d.l + p }

// txURL is the path of a transaction, or of an action on it.
func (d *dx) txURL(id string, action ...string) string {
	p := d.path("/transactions/" + id)
	for _, a := range action {
		p += "/" + a
	}
	return p
}

// try sends a request; a transport failure or a 5xx is an error. Safe in
// goroutines.
func (d *dx) try(method, path, key string, body any, headers ...string) (*ledgertest.Response, error) {
	r, err := d.e.TryDo(method, path, key, body, headers...)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if r.Status >= 500 {
		return r, fmt.Errorf("%s %s: server error %d: %s", method, path, r.Status, r.Body)
	}
	return r, nil
}

func (d *dx) do(method, path, key string, body any, headers ...string) *ledgertest.Response {
	d.t.Helper()
	r, err := d.try(method, path, key, body, headers...)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// must sends a request and requires a status (and problem code, if given).
func (d *dx) must(status int, code, method, path, key string, body any, headers ...string) *ledgertest.Response {
	d.t.Helper()
	r := d.do(method, path, key, body, headers...)
	if err := dxIs(r, status, code); err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// dxIs checks an answer's status and problem code (code "" for any).
func dxIs(r *ledgertest.Response, status int, code string) error {
	if r.Status != status || (code != "" && r.Code() != code) {
		return fmt.Errorf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	return nil
}

func (d *dx) key(role string) string {
	d.t.Helper()
	r := d.must(201, "", "POST", "/v1/api-keys", dxAdmin, map[string]any{"ledger": d.l, "role": role})
	return r.JSON()["key"].(string)
}

// acct creates an account; min nil means unbounded.
func (d *dx) acct(id, asset string, min *int64) {
	d.t.Helper()
	d.must(201, "", "POST", d.path("/accounts"), dxAdmin, map[string]any{"id": id, "asset": asset, "min_balance": min})
}

func dxMin(v int64) *int64 { return &v }

// dxP is a posting.
func dxP(src, dst string, amount int64, asset string) map[string]any {
	return map[string]any{"source": src, "destination": dst, "amount": amount, "asset": asset}
}

// dxBody is a transaction request; kv adds members.
func dxBody(postings []map[string]any, kv ...any) map[string]any {
	m := map[string]any{"postings": postings}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// post posts a transaction with the bootstrap key and requires a 201.
func (d *dx) post(body map[string]any, headers ...string) dxTx {
	d.t.Helper()
	return dxDecode[dxTx](d.t, d.must(201, "", "POST", d.path("/transactions"), dxAdmin, body, headers...))
}

func (d *dx) xfer(src, dst string, amount int64, asset string) dxTx {
	d.t.Helper()
	return d.post(dxBody([]map[string]any{dxP(src, dst, amount, asset)}))
}

// hold places a hold; timeout 0 means none.
func (d *dx) hold(timeout int64, postings ...map[string]any) dxTx {
	d.t.Helper()
	body := dxBody(postings, "pending", true)
	if timeout > 0 {
		body["pending_timeout_seconds"] = timeout
	}
	h := d.post(body)
	if h.Status != "pending" || h.ResolvedBy != "" || h.PendingID != "" {
		d.t.Fatalf("new hold: %+v", h)
	}
	if (timeout > 0) != (h.ExpiresAt != "") {
		d.t.Fatalf("hold with timeout %d has expires_at %q", timeout, h.ExpiresAt)
	}
	return h
}

// act sends a capture ("post"), "void" or "reverse" of transaction id.
func (d *dx) act(id, action, key string, body any, headers ...string) *ledgertest.Response {
	d.t.Helper()
	return d.do("POST", d.txURL(id, action), key, body, headers...)
}

// actOK sends an action that must answer 200 and returns the new
// transaction.
func (d *dx) actOK(id, action string, body any, headers ...string) dxTx {
	d.t.Helper()
	r := d.act(id, action, dxAdmin, body, headers...)
	if err := dxIs(r, 200, ""); err != nil {
		d.t.Fatalf("%s %s: %v", action, id, err)
	}
	return dxDecode[dxTx](d.t, r)
}

func (d *dx) tx(id string) dxTx {
	d.t.Helper()
	return dxDecode[dxTx](d.t, d.must(200, "", "GET", d.txURL(id), dxAdmin, nil))
}

func (d *dx) account(id string) dxAccount {
	d.t.Helper()
	return dxDecode[dxAccount](d.t, d.must(200, "", "GET", d.path("/accounts/"+id), dxAdmin, nil))
}

func (d *dx) lastSeq() int64 {
	d.t.Helper()
	l := dxDecode[struct {
		LastSequence int64 `json:"last_sequence"`
	}](d.t, d.must(200, "", "GET", "/v1/ledgers/"+d.l, dxAdmin, nil))
	return l.LastSequence
}

// page is one page of a list.
type dxPage[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// walk follows next_cursor from path (which has a query string).
func dxWalk[T any](d *dx, path string) []T {
	d.t.Helper()
	var all []T
	p := path
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			d.t.Fatalf("walk %s: too many pages", path)
		}
		pg := dxDecode[dxPage[T]](d.t, d.must(200, "", "GET", p, dxAdmin, nil))
		all = append(all, pg.Data...)
		if pg.NextCursor == nil {
			return all
		}
		p = path + "&cursor=" + url.QueryEscape(*pg.NextCursor)
	}
}

// txs lists every transaction of the ledger in sequence order.
func (d *dx) txs() []dxTx {
	d.t.Helper()
	return dxWalk[dxTx](d, d.path("/transactions?limit=1000"))
}

func (d *dx) accounts() []dxAccount {
	d.t.Helper()
	return dxWalk[dxAccount](d, d.path("/accounts?limit=1000"))
}

// state renders what a rejected request must not change: the ledger's
// last sequence and the given accounts and transactions as read.
func (d *dx) state(accounts []string, txs ...string) string {
	d.t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "last_sequence %d\n", d.lastSeq())
	for _, id := range accounts {
		fmt.Fprintf(&b, "%s\n", d.must(200, "", "GET", d.path("/accounts/"+id), dxAdmin, nil).Body)
	}
	for _, id := range txs {
		fmt.Fprintf(&b, "%s\n", d.must(200, "", "GET", d.txURL(id), dxAdmin, nil).Body)
	}
	return b.String()
}

// unchanged fails unless state(accounts, txs...) is still before.
func (d *dx) unchanged(what, before string, accounts []string, txs ...string) {
	d.t.Helper()
	if now := d.state(accounts, txs...); now != before {
		d.t.Fatalf("%s changed the ledger:\nbefore %s\nafter  %s", what, before, now)
	}
}

// waitFor polls cond every 50 ms for up to 10 s.
func (d *dx) waitFor(what string, cond func() bool) {
	d.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			d.t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type dxPosting struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Amount      int64  `json:"amount"`
	Asset       string `json:"asset"`
}

type dxTx struct {
	ID         string            `json:"id"`
	Sequence   int64             `json:"sequence"`
	Status     string            `json:"status"`
	Postings   []dxPosting       `json:"postings"`
	Metadata   map[string]string `json:"metadata"`
	Reference  *string           `json:"reference"`
	CreatedAt  string            `json:"created_at"`
	ExpiresAt  string            `json:"expires_at"`
	PendingID  string            `json:"pending_id"`
	ResolvedBy string            `json:"resolved_by"`
	Reverses   string            `json:"reverses"`
	ReversedBy string            `json:"reversed_by"`
}

// isHold reports whether t is a hold (pending or resolved).
func (t dxTx) isHold() bool { return t.Status == "pending" || t.ResolvedBy != "" }

// movesPosted reports whether t's postings moved posted balances: an
// ordinary transaction, a capture or a reversal.
// holdStatusAfter is a hold's status once resolved by a transaction of
// status resolution: a capture (posted) leaves it captured, a void or an
// expiry voided or expired.
func holdStatusAfter(resolution string) string {
	if resolution == "posted" {
		return "captured"
	}
	return resolution
}

func (t dxTx) movesPosted() bool { return t.Status == "posted" && t.ResolvedBy == "" }

func (t dxTx) at(tb testing.TB) time.Time {
	tb.Helper()
	return dxTime(tb, t.CreatedAt)
}

type dxBalance struct {
	Posted         int64 `json:"posted"`
	PendingDebits  int64 `json:"pending_debits"`
	PendingCredits int64 `json:"pending_credits"`
	Available      int64 `json:"available"`
}

type dxAccount struct {
	ID         string            `json:"id"`
	Asset      string            `json:"asset"`
	MinBalance *int64            `json:"min_balance"`
	Metadata   map[string]string `json:"metadata"`
	Balance    dxBalance         `json:"balance"`
	Version    int64             `json:"version"`
	CreatedAt  string            `json:"created_at"`
}

func dxDecode[T any](tb testing.TB, r *ledgertest.Response) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Fatalf("decode %T from %s: %v", v, r.Body, err)
	}
	return v
}

func dxTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("time %q: %v", s, err)
	}
	return at
}

// dxFormat renders an instant as the API does (RFC 3339, UTC, µs).
func dxFormat(at time.Time) string { return at.UTC().Format("2006-01-02T15:04:05.000000Z") }

// dxBook is an account's balances recomputed from the transaction log.
type dxBook struct {
	Posted, PendingDebits, PendingCredits, Version int64
}

// dxReplay recomputes every account's balances and version from the log
// (in sequence order), counting only the transactions keep accepts: a hold
// adds to the pending totals, its capture, void or expiry releases the
// held amounts and a capture posts what it captured; ordinary transactions
// and reversals post their postings.
func dxReplay(tb testing.TB, log []dxTx, keep func(dxTx) bool) map[string]*dxBook {
	tb.Helper()
	byID := make(map[string]dxTx, len(log))
	for _, t := range log {
		byID[t.ID] = t
	}
	books := map[string]*dxBook{}
	get := func(id string) *dxBook {
		if books[id] == nil {
			books[id] = &dxBook{}
		}
		return books[id]
	}
	for _, t := range log {
		if keep != nil && !keep(t) {
			continue
		}
		touched := map[string]bool{}
		switch {
		case t.isHold():
			for _, p := range t.Postings {
				get(p.Source).PendingDebits += p.Amount
				get(p.Destination).PendingCredits += p.Amount
				touched[p.Source], touched[p.Destination] = true, true
			}
		case t.PendingID != "":
			h, ok := byID[t.PendingID]
			if !ok {
				tb.Fatalf("transaction %s resolves %s, which is not in the log", t.ID, t.PendingID)
			}
			for _, p := range h.Postings {
				get(p.Source).PendingDebits -= p.Amount
				get(p.Destination).PendingCredits -= p.Amount
				touched[p.Source], touched[p.Destination] = true, true
			}
			if t.Status == "posted" {
				for _, p := range t.Postings {
					get(p.Source).Posted -= p.Amount
					get(p.Destination).Posted += p.Amount
				}
			}
		default:
			for _, p := range t.Postings {
				get(p.Source).Posted -= p.Amount
				get(p.Destination).Posted += p.Amount
				touched[p.Source], touched[p.Destination] = true, true
			}
		}
		for id := range touched {
			get(id).Version++
		}
	}
	return books
}

// dxCheckLedger checks what docs/api.md §Invariants requires of a quiet ledger and returns
// its log and accounts: gap-free sequences with non-decreasing created_at
// (5); posted summing to zero per asset (1); every account's balances and
// version equal to a replay of the log; available ≥ min_balance unless
// forced reversals were allowed (2); a hold resolved at most once, by the
// transaction it names, and a transaction reversed at most once, by the
// one it names (6).
func (d *dx) checkLedger(forced bool) ([]dxTx, []dxAccount) {
	d.t.Helper()
	t := d.t
	log := d.txs()
	if last := d.lastSeq(); int64(len(log)) != last {
		t.Fatalf("the log has %d transactions, last_sequence is %d", len(log), last)
	}
	byID := map[string]dxTx{}
	for i, x := range log {
		if x.Sequence != int64(i+1) {
			t.Fatalf("sequence %d at position %d: not gap-free", x.Sequence, i+1)
		}
		if i > 0 && x.at(t).Before(log[i-1].at(t)) {
			t.Fatalf("created_at decreases at sequence %d: %s after %s", x.Sequence, x.CreatedAt, log[i-1].CreatedAt)
		}
		byID[x.ID] = x
	}
	resolutions, reversals := map[string][]string{}, map[string][]string{}
	for _, x := range log {
		if x.PendingID != "" {
			resolutions[x.PendingID] = append(resolutions[x.PendingID], x.ID)
			h := byID[x.PendingID]
			if !h.isHold() || h.ResolvedBy != x.ID || h.Status != holdStatusAfter(x.Status) || h.Sequence >= x.Sequence {
				t.Fatalf("%s (%s) resolves %+v", x.ID, x.Status, h)
			}
			// The deadline decides: a capture or void before it, an
			// expiry at or after it, and never an expiry without one.
			switch {
			case h.ExpiresAt == "" && x.Status == "expired":
				t.Fatalf("%s expired %+v, which has no deadline", x.ID, h)
			case h.ExpiresAt != "" && x.Status == "expired" && x.at(t).Before(dxTime(t, h.ExpiresAt)):
				t.Fatalf("%s expired %+v at %s, before its deadline", x.ID, h, x.CreatedAt)
			case h.ExpiresAt != "" && x.Status != "expired" && !x.at(t).Before(dxTime(t, h.ExpiresAt)):
				t.Fatalf("%s (%s) resolved %+v at %s, at or after its deadline", x.ID, x.Status, h, x.CreatedAt)
			}
		}
		if x.Reverses != "" {
			reversals[x.Reverses] = append(reversals[x.Reverses], x.ID)
			o := byID[x.Reverses]
			if o.ReversedBy != x.ID || !o.movesPosted() || o.Reverses != "" || x.Status != "posted" {
				t.Fatalf("%s reverses %+v", x.ID, o)
			}
			if len(o.Postings) != len(x.Postings) {
				t.Fatalf("reversal %s has %d postings, the original %d", x.ID, len(x.Postings), len(o.Postings))
			}
			for i, p := range o.Postings {
				if q := x.Postings[i]; q.Source != p.Destination || q.Destination != p.Source || q.Amount != p.Amount || q.Asset != p.Asset {
					t.Fatalf("reversal %s posting %d is %+v, the original's %+v", x.ID, i, q, p)
				}
			}
		}
		if x.ResolvedBy != "" && byID[x.ResolvedBy].PendingID != x.ID {
			t.Fatalf("%s is resolved by %s, which does not name it", x.ID, x.ResolvedBy)
		}
		if x.ReversedBy != "" && byID[x.ReversedBy].Reverses != x.ID {
			t.Fatalf("%s is reversed by %s, which does not name it", x.ID, x.ReversedBy)
		}
		if x.isHold() && x.PendingID != "" || x.isHold() && x.Reverses != "" {
			t.Fatalf("hold %+v is also a resolution or reversal", x)
		}
	}
	for id, rs := range resolutions {
		if len(rs) > 1 {
			t.Fatalf("hold %s resolved %d times: %v", id, len(rs), rs)
		}
	}
	for id, rs := range reversals {
		if len(rs) > 1 {
			t.Fatalf("transaction %s reversed %d times: %v", id, len(rs), rs)
		}
	}
	accts := d.accounts()
	books := dxReplay(t, log, nil)
	sums := map[string]int64{}
	for _, a := range accts {
		sums[a.Asset] += a.Balance.Posted
		b := books[a.ID]
		if b == nil {
			b = &dxBook{}
		}
		got := dxBook{a.Balance.Posted, a.Balance.PendingDebits, a.Balance.PendingCredits, a.Version}
		if got != *b {
			t.Fatalf("account %s is %+v, the log replays to %+v", a.ID, got, *b)
		}
		if a.Balance.Available != a.Balance.Posted-a.Balance.PendingDebits {
			t.Fatalf("account %s: available %d ≠ posted − pending_debits", a.ID, a.Balance.Available)
		}
		if !forced && a.MinBalance != nil && a.Balance.Available < *a.MinBalance {
			t.Fatalf("account %s: available %d below min_balance %d", a.ID, a.Balance.Available, *a.MinBalance)
		}
	}
	for asset, s := range sums {
		if s != 0 {
			t.Fatalf("posted sums to %d in %s", s, asset)
		}
	}
	return log, accts
}

// TestHoldOverspend: holds count against min_balance when placed, under
// concurrency on two nodes: of 40 concurrent holds of 1,000 on an account
// holding 5,000, exactly five succeed.
func TestHoldOverspend(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "overspend", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("shop", "USD", dxMin(0))
	d.xfer("world", "alice", 5000, "USD")

	const n = 40
	var wg sync.WaitGroup
	codes := make([]string, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		node := []*dx{d, d2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := node.try("POST", node.path("/transactions"), dxAdmin,
				dxBody([]map[string]any{dxP("alice", "shop", 1000, "USD")}, "pending", true))
			if err != nil {
				errs <- err
				return
			}
			codes[i] = fmt.Sprintf("%d %s", r.Status, r.Code())
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range codes {
		count[c]++
	}
	if count["201 "] != 5 || count["422 insufficient_funds"] != n-5 {
		t.Fatalf("answers %v, want five 201 and %d 422 insufficient_funds", count, n-5)
	}
	a := d.account("alice")
	if a.Balance != (dxBalance{Posted: 5000, PendingDebits: 5000, Available: 0}) {
		t.Fatalf("alice: %+v", a.Balance)
	}
	if s := d.account("shop").Balance; s != (dxBalance{PendingCredits: 5000}) {
		t.Fatalf("shop: %+v (pending credits never count as available)", s)
	}
	log, _ := d.checkLedger(false)
	if len(log) != 6 {
		t.Fatalf("%d transactions, want the funding and five holds", len(log))
	}
	// The held money is still not spendable by a plain transfer.
	d.must(422, "insufficient_funds", "POST", d.path("/transactions"), dxAdmin,
		dxBody([]map[string]any{dxP("alice", "world", 1, "USD")}))
}

// TestHoldResolutionRace: a capture (on one node), a void (on another) and
// both nodes' expiry loops race on each of 30 holds around its deadline:
// every hold resolves exactly once, every losing attempt is invalid_state,
// and the balances come back exactly.
func TestHoldResolutionRace(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "race", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("payer", "USD", dxMin(0))
	d.acct("payee", "USD", dxMin(0))
	d.xfer("world", "payer", 100_000, "USD")

	const n = 30
	holds := make([]dxTx, n)
	for i := range holds {
		holds[i] = d.hold(1, dxP("payer", "payee", int64(100+i), "USD"))
	}

	// A reader samples invariant 1 while the race runs.
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		var err error
		defer func() { sampled <- err }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var r *ledgertest.Response
			if r, err = d.try("GET", d.path("/accounts?limit=1000"), dxAdmin, nil); err != nil {
				return
			}
			var pg dxPage[dxAccount]
			if err = json.Unmarshal(r.Body, &pg); err != nil {
				return
			}
			var sum int64
			for _, a := range pg.Data {
				sum += a.Balance.Posted
			}
			if sum != 0 {
				err = fmt.Errorf("posted sums to %d: %s", sum, r.Body)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	type outcome struct {
		capture, void *ledgertest.Response
		amounts       []int64 // nil: full capture
	}
	outs := make([]outcome, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i, h := range holds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Fire around the deadline (the database's clock, the same
			// host's): from 210 ms before to 60 ms after.
			offset := time.Duration(i%10-7) * 30 * time.Millisecond
			time.Sleep(time.Until(dxTime(t, h.ExpiresAt).Add(offset)))
			var body any = map[string]any{}
			if i%2 == 1 {
				outs[i].amounts = []int64{50}
				body = map[string]any{"amounts": outs[i].amounts}
			}
			// Capture and void on different nodes (their batches meet
			// at the ledger lock), and now and then on one node (they
			// meet inside one batch).
			cn, vn := d, d2
			switch i % 4 {
			case 1:
				cn, vn = d2, d
			case 3:
				vn = cn
			}
			var in sync.WaitGroup
			in.Add(2)
			go func() {
				defer in.Done()
				r, err := cn.try("POST", cn.txURL(h.ID, "post"), dxAdmin, body)
				if err != nil {
					errs <- err
				}
				outs[i].capture = r
			}()
			go func() {
				defer in.Done()
				r, err := vn.try("POST", vn.txURL(h.ID, "void"), dxAdmin, map[string]any{})
				if err != nil {
					errs <- err
				}
				outs[i].void = r
			}()
			in.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d.waitFor("every hold to resolve", func() bool {
		for _, h := range holds {
			if d.tx(h.ID).Status == "pending" {
				return false
			}
		}
		return true
	})
	close(stop)
	if err := <-sampled; err != nil {
		t.Fatal(err)
	}

	log, _ := d.checkLedger(false)
	resolution := map[string][]dxTx{}
	for _, x := range log {
		if x.PendingID != "" {
			resolution[x.PendingID] = append(resolution[x.PendingID], x)
		}
	}
	var captured int64
	tally := map[string]int{}
	for i, h := range holds {
		o := outs[i]
		now := d.tx(h.ID)
		rs := resolution[h.ID]
		if len(rs) != 1 || now.ResolvedBy != rs[0].ID || now.Status != holdStatusAfter(rs[0].Status) {
			t.Fatalf("hold %d is %+v, resolved by %+v", i, now, rs)
		}
		if !slices.Equal(now.Postings, h.Postings) {
			t.Fatalf("hold %d's postings changed: %+v → %+v", i, h.Postings, now.Postings)
		}
		won := map[string]*ledgertest.Response{"post": o.capture, "void": o.void}
		winner := ""
		for action, r := range won {
			switch {
			case r.Status == 200:
				if winner != "" {
					t.Fatalf("hold %d: both capture and void answered 200", i)
				}
				winner = action
				if got := dxDecode[dxTx](t, r); got.ID != rs[0].ID {
					t.Fatalf("hold %d: %s answered %s, the log says %s resolved it", i, action, got.ID, rs[0].ID)
				}
			case r.Status == 409 && r.Code() == "invalid_state":
			default:
				t.Fatalf("hold %d: %s answered %d %s", i, action, r.Status, r.Body)
			}
		}
		want := map[string]string{"post": "captured", "void": "voided", "": "expired"}[winner]
		if now.Status != want {
			t.Fatalf("hold %d is %s, but the winning request was %q", i, now.Status, winner)
		}
		tally[want]++
		if want == "captured" {
			amount := h.Postings[0].Amount
			if o.amounts != nil {
				amount = o.amounts[0]
			}
			if got := rs[0].Postings; len(got) != 1 || got[0].Amount != amount {
				t.Fatalf("hold %d: capture posted %+v, want %d", i, got, amount)
			}
			captured += amount
		} else if !slices.Equal(rs[0].Postings, h.Postings) {
			t.Fatalf("hold %d: %s released %+v, want the held %+v", i, want, rs[0].Postings, h.Postings)
		}
	}
	t.Logf("outcomes: %v", tally)
	if p := d.account("payer").Balance; p != (dxBalance{Posted: 100_000 - captured, Available: 100_000 - captured}) {
		t.Fatalf("payer: %+v, captured %d", p, captured)
	}
	if p := d.account("payee").Balance; p != (dxBalance{Posted: captured, Available: captured}) {
		t.Fatalf("payee: %+v, captured %d", p, captured)
	}
}

// TestCapture: partial capture releases the remainder and leaves out
// postings captured at 0; full capture with {} and with an empty body; bad
// amounts are 422 and change nothing; a capture replays with its key;
// resolving twice, capturing a non-hold, or resolving after the deadline
// is invalid_state.
func TestCapture(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "capture", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.acct("carol", "USD", dxMin(0))
	fund := d.xfer("world", "alice", 10_000, "USD")
	all := []string{"world", "alice", "bob", "carol"}

	h := d.hold(0, dxP("alice", "bob", 300, "USD"), dxP("alice", "carol", 200, "USD"))
	if a := d.account("alice").Balance; a != (dxBalance{Posted: 10_000, PendingDebits: 500, Available: 9500}) {
		t.Fatalf("alice with a hold: %+v", a)
	}
	if b := d.account("bob").Balance; b != (dxBalance{PendingCredits: 300}) {
		t.Fatalf("bob with a hold: %+v", b)
	}

	// Bad amounts: 422 naming the field, nothing changed.
	before := d.state(all, h.ID)
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"amounts": []int64{0, 0}}, "amounts"},
		{map[string]any{"amounts": []int64{301, 0}}, "amounts[0]"},
		{map[string]any{"amounts": []int64{300, 201}}, "amounts[1]"},
		{map[string]any{"amounts": []int64{100}}, "amounts"},
		{map[string]any{"amounts": []int64{100, 0, 0}}, "amounts"},
		{map[string]any{"amounts": []int64{}}, "amounts"},
		{map[string]any{"amounts": []int64{-1, 10}}, "amounts[0]"},
		{map[string]any{"amounts": []any{"10", 10}}, "amounts[0]"},
		{map[string]any{"amounts": []any{1.5, 10}}, "amounts[0]"},
		{map[string]any{"amounts": 10}, "amounts"},
		{map[string]any{"amount": []int64{10, 10}}, "amount"},
		{`{"amounts": [1e1, 10]}`, "amounts[0]"},
	} {
		r := d.act(h.ID, "post", dxAdmin, tc.body)
		if err := dxIs(r, 422, "validation_failed"); err != nil {
			t.Fatalf("capture %v: %v", tc.body, err)
		}
		if !bytes.Contains(r.Body, []byte(strconv.Quote(tc.field))) {
			t.Fatalf("capture %v: errors do not name %s: %s", tc.body, tc.field, r.Body)
		}
	}
	d.must(400, "malformed_json", "POST", d.txURL(h.ID, "post"), dxAdmin, `{"amounts": [1,`)
	d.must(422, "validation_failed", "POST", d.txURL(h.ID, "void"), dxAdmin, map[string]any{"amounts": []int64{1, 1}})
	d.unchanged("a rejected capture", before, all, h.ID)

	// A rejected capture does not store its Idempotency-Key (422 is
	// retried with it); then the partial capture: 100 of bob's 300,
	// nothing of carol's 200.
	key := "capture-" + h.ID
	d.must(422, "validation_failed", "POST", d.txURL(h.ID, "post"), dxAdmin, map[string]any{"amounts": []int64{301, 0}}, "Idempotency-Key", key)
	d.unchanged("a rejected capture with a key", before, all, h.ID)
	c := d.actOK(h.ID, "post", map[string]any{"amounts": []int64{100, 0}}, "Idempotency-Key", key)
	if c.Status != "posted" || c.PendingID != h.ID || c.ID == h.ID || c.Sequence != h.Sequence+1 {
		t.Fatalf("capture: %+v", c)
	}
	if want := []dxPosting{{"alice", "bob", 100, "USD"}}; !slices.Equal(c.Postings, want) {
		t.Fatalf("capture postings %+v, want %+v (a posting captured at 0 is left out)", c.Postings, want)
	}
	now := d.tx(h.ID)
	if now.Status != "captured" || now.ResolvedBy != c.ID || !slices.Equal(now.Postings, h.Postings) {
		t.Fatalf("captured hold: %+v", now)
	}
	for id, want := range map[string]dxBalance{
		"alice": {Posted: 9900, Available: 9900},
		"bob":   {Posted: 100, Available: 100},
		"carol": {},
	} {
		if got := d.account(id).Balance; got != want {
			t.Fatalf("%s after the partial capture: %+v, want %+v", id, got, want)
		}
	}

	// The capture replays with its key: same transaction, nothing new.
	before = d.state(all, h.ID, c.ID)
	r := d.must(200, "", "POST", d.txURL(h.ID, "post"), dxAdmin, `{ "amounts" : [100,0] }`, "Idempotency-Key", key)
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed capture without Idempotent-Replayed: %v", r.Header)
	}
	if got := dxDecode[dxTx](t, r); got.ID != c.ID || got.Sequence != c.Sequence {
		t.Fatalf("replay answered %+v, want the capture %+v", got, c)
	}
	d.must(422, "idempotency_key_reused", "POST", d.txURL(h.ID, "post"), dxAdmin, map[string]any{}, "Idempotency-Key", key)
	d.must(422, "idempotency_key_reused", "POST", d.txURL(h.ID, "void"), dxAdmin, map[string]any{}, "Idempotency-Key", key)
	d.unchanged("a replayed capture", before, all, h.ID, c.ID)

	// A hold resolves once; only holds resolve.
	for _, tc := range []struct{ id, action string }{
		{h.ID, "void"}, {h.ID, "post"}, {c.ID, "post"}, {c.ID, "void"}, {fund.ID, "post"}, {fund.ID, "void"},
	} {
		d.must(409, "invalid_state", "POST", d.txURL(tc.id, tc.action), dxAdmin, map[string]any{})
	}
	d.unchanged("resolving twice", before, all, h.ID, c.ID)

	// Full capture with {} and with an empty body.
	for _, body := range []any{map[string]any{}, nil, map[string]any{"amounts": nil}} {
		h := d.hold(3600, dxP("alice", "bob", 40, "USD"), dxP("alice", "carol", 60, "USD"))
		c := d.actOK(h.ID, "post", body)
		if !slices.Equal(c.Postings, h.Postings) || c.PendingID != h.ID {
			t.Fatalf("full capture (body %v) of %+v: %+v", body, h.Postings, c)
		}
	}
	// A void releases everything.
	v := d.actOK(d.hold(0, dxP("alice", "bob", 7, "USD")).ID, "void", nil)
	if v.Status != "voided" || len(v.Postings) != 1 || v.Postings[0].Amount != 7 {
		t.Fatalf("void: %+v", v)
	}
	// A void is not a hold either.
	d.must(409, "invalid_state", "POST", d.txURL(v.ID, "post"), dxAdmin, nil)
	d.must(409, "invalid_state", "POST", d.txURL(v.ID, "void"), dxAdmin, nil)
	for id, want := range map[string]dxBalance{
		"alice": {Posted: 9600, Available: 9600},
		"bob":   {Posted: 220, Available: 220},
		"carol": {Posted: 180, Available: 180},
	} {
		if got := d.account(id).Balance; got != want {
			t.Fatalf("%s after the full captures: %+v, want %+v", id, got, want)
		}
	}

	// After the deadline, capture and void are invalid_state, and the
	// expiry loop resolves the hold.
	late := d.hold(1, dxP("alice", "bob", 25, "USD"))
	time.Sleep(time.Until(dxTime(t, late.ExpiresAt).Add(50 * time.Millisecond)))
	d.must(409, "invalid_state", "POST", d.txURL(late.ID, "post"), dxAdmin, nil)
	d.must(409, "invalid_state", "POST", d.txURL(late.ID, "void"), dxAdmin, nil)
	d.waitFor("the hold to expire", func() bool { return d.tx(late.ID).Status == "expired" })
	late2 := d.tx(late.ID)
	e := d.tx(late2.ResolvedBy)
	if e.Status != "expired" || e.PendingID != late.ID || !slices.Equal(e.Postings, late.Postings) {
		t.Fatalf("expiry: %+v", e)
	}
	d.must(409, "invalid_state", "POST", d.txURL(late.ID, "post"), dxAdmin, nil)
	d.must(409, "invalid_state", "POST", d.txURL(e.ID, "void"), dxAdmin, nil)
	if got := d.account("alice").Balance; got != (dxBalance{Posted: 9600, Available: 9600}) {
		t.Fatalf("alice after the expiry: %+v", got)
	}
	d.checkLedger(false)
}

// TestHoldExpiryTwoNodes: with two nodes on one database, both running
// the expiry loop, holds past their deadline expire without any request,
// each exactly once.
func TestHoldExpiryTwoNodes(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "expiry", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.xfer("world", "alice", 10_000, "USD")

	var short []dxTx
	for i := range 20 {
		node := []*dx{d, d2}[i%2]
		ps := []map[string]any{dxP("alice", "bob", int64(10+i), "USD")}
		if i%4 == 0 {
			ps = append(ps, dxP("world", "bob", 5, "USD"))
		}
		short = append(short, node.hold(1, ps...))
	}
	long := d.hold(3600, dxP("alice", "bob", 1, "USD"))
	never := d2.hold(0, dxP("alice", "bob", 2, "USD"))

	d.waitFor("every short hold to expire", func() bool {
		for _, h := range short {
			if d2.tx(h.ID).Status != "expired" {
				return false
			}
		}
		return true
	})
	// Give a second expiry, if the nodes could commit one, time to land
	// before counting (both loops tick every 100 ms).
	time.Sleep(500 * time.Millisecond)

	log, _ := d.checkLedger(false)
	expiries := map[string]int{}
	for _, x := range log {
		if x.Status == "expired" && x.PendingID != "" {
			expiries[x.PendingID]++
		}
	}
	if len(expiries) != len(short) {
		t.Fatalf("%d holds expired, want %d: %v", len(expiries), len(short), expiries)
	}
	for _, h := range short {
		if expiries[h.ID] != 1 {
			t.Fatalf("hold %s expired %d times", h.ID, expiries[h.ID])
		}
	}
	for _, h := range []dxTx{long, never} {
		if s := d.tx(h.ID).Status; s != "pending" {
			t.Fatalf("hold %s without a past deadline is %s", h.ID, s)
		}
	}
	if a := d.account("alice").Balance; a != (dxBalance{Posted: 10_000, PendingDebits: 3, Available: 9997}) {
		t.Fatalf("alice: %+v", a)
	}
}

// TestHoldBadInput: bad input to holds and to post/void/reverse gets the
// right code and changes nothing.
func TestHoldBadInput(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "holdbad", ledgertest.Options{})
	d.acct("world", "USD", nil)
	d.acct("alice", "USD", dxMin(0))
	d.acct("bob", "USD", dxMin(0))
	d.xfer("world", "alice", 1000, "USD")
	h := d.hold(3600, dxP("alice", "bob", 100, "USD"))
	read := d.key("read")
	write := d.key("write")
	other := &dx{t: t, e: d.e, l: "other"}
	d.must(201, "", "POST", "/v1/ledgers", dxAdmin, map[string]any{"name": "other"})
	otherAdmin := other.key("admin")
	all := []string{"world", "alice", "bob"}
	before := d.state(all, h.ID)

	p := []map[string]any{dxP("alice", "bob", 10, "USD")}
	for _, body := range []any{
		dxBody(p, "pending_timeout_seconds", 60),
		dxBody(p, "pending", false, "pending_timeout_seconds", 60),
		dxBody(p, "pending", true, "pending_timeout_seconds", 0),
		dxBody(p, "pending", true, "pending_timeout_seconds", -1),
		dxBody(p, "pending", true, "pending_timeout_seconds", 2_592_001),
		dxBody(p, "pending", true, "pending_timeout_seconds", "60"),
		dxBody(p, "pending", true, "pending_timeout_seconds", 1.5),
		dxBody(p, "pending", "true"),
	} {
		r := d.do("POST", d.path("/transactions"), dxAdmin, body)
		if err := dxIs(r, 422, "validation_failed"); err != nil {
			t.Fatalf("%v: %v", body, err)
		}
		if !bytes.Contains(r.Body, []byte(`"field":"pending`)) {
			t.Fatalf("%v: errors do not name the pending field: %s", body, r.Body)
		}
	}
	// Also inside a batch.
	r := d.must(200, "", "POST", d.path("/transactions/batch"), dxAdmin, map[string]any{"transactions": []any{
		dxBody(p, "pending_timeout_seconds", 60)}})
	if !bytes.Contains(r.Body, []byte(`"status":422`)) {
		t.Fatalf("batch item with pending_timeout_seconds and no pending: %s", r.Body)
	}
	d.unchanged("a rejected hold", before, all, h.ID)

	unknown := "0190a5e0-0000-7000-8000-000000000000"
	for _, action := range []string{"post", "void", "reverse"} {
		for _, id := range []string{unknown, "nope", "123", "0190a5e0000070008000000000000000", "{0190a5e0-0000-7000-8000-000000000000}",
			"urn:uuid:0190a5e0-0000-7000-8000-000000000000", strings.ToUpper(unknown) + "0", "%00", "-"} {
			r := d.act(url.PathEscape(id), action, dxAdmin, map[string]any{})
			if err := dxIs(r, 404, "not_found"); err != nil {
				t.Fatalf("%s of %q: %v", action, id, err)
			}
		}
		// The transaction exists, but in another ledger.
		if err := dxIs(other.act(h.ID, action, dxAdmin, map[string]any{}), 404, "not_found"); err != nil {
			t.Fatalf("%s of another ledger's transaction: %v", action, err)
		}
		// Another ledger's key does not see this ledger at all.
		if err := dxIs(d.act(h.ID, action, otherAdmin, map[string]any{}), 404, "not_found"); err != nil {
			t.Fatalf("%s with another ledger's key: %v", action, err)
		}
		// A read key may not act (403, before the body is read); no key is 401.
		if err := dxIs(d.act(h.ID, action, read, map[string]any{}), 403, "forbidden"); err != nil {
			t.Fatalf("%s with a read key: %v", action, err)
		}
		if err := dxIs(d.act(h.ID, action, read, `{"amounts":`), 403, "forbidden"); err != nil {
			t.Fatalf("%s with a read key and a malformed body: %v", action, err)
		}
		if err := dxIs(d.act(h.ID, action, "", map[string]any{}), 401, "unauthorized"); err != nil {
			t.Fatalf("%s without a key: %v", action, err)
		}
		// A key is checked before the id.
		if err := dxIs(d.act("nope", action, "", map[string]any{}), 401, "unauthorized"); err != nil {
			t.Fatalf("%s of a malformed id without a key: %v", action, err)
		}
		// Body errors come before the id's 404.
		if err := dxIs(d.act(unknown, action, write, `{"x":`), 400, "malformed_json"); err != nil {
			t.Fatalf("%s with a malformed body: %v", action, err)
		}
		if err := dxIs(d.act(unknown, action, write, map[string]any{"unknown": 1}), 422, "validation_failed"); err != nil {
			t.Fatalf("%s with an unknown member: %v", action, err)
		}
		// An unknown id with an Idempotency-Key is 404 and not stored.
		if err := dxIs(d.act(unknown, action, write, map[string]any{}, "Idempotency-Key", "k-"+action), 404, "not_found"); err != nil {
			t.Fatalf("%s of an unknown id with a key: %v", action, err)
		}
	}
	d.must(405, "method_not_allowed", "GET", d.txURL(h.ID, "post"), dxAdmin, nil)
	d.must(405, "method_not_allowed", "PUT", d.txURL(h.ID, "void"), dxAdmin, nil)
	d.unchanged("rejected actions", before, all, h.ID)

	// The bounds themselves are accepted.
	d.hold(2_592_000, dxP("alice", "bob", 1, "USD"))
	short := d.hold(1, dxP("alice", "bob", 1, "USD"))
	// A write key may resolve holds, and the key of a 404 above was not
	// stored: it is free for another request.
	if err := dxIs(d.act(h.ID, "void", write, nil, "Idempotency-Key", "k-void"), 200, ""); err != nil {
		t.Fatal(err)
	}
	d.waitFor("the 1 s hold to expire", func() bool { return d.tx(short.ID).Status == "expired" })
	d.checkLedger(false)
}

// TestInvariantsWithHolds: 32 goroutines on two nodes post transfers and
// batches, place holds (some expiring in 1 s), capture them fully or
// partly, void them and reverse earlier transactions for about 4 s, while
// a reader checks invariant 1 and 2 on every snapshot it reads and tails
// the log (5). Afterwards the ledger passes checkLedger, no transaction's
// postings ever changed, and no hold or reversal succeeded twice.
func TestInvariantsWithHolds(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "mixed", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	nodes := []*dx{d, d2}
	d.acct("world", "USD", nil)
	d.acct("world-eur", "EUR", nil)
	type acct struct {
		id, asset string
	}
	var users []acct
	for i := range 8 {
		min := dxMin(0)
		if i >= 6 {
			min = dxMin(-1000)
		}
		id := fmt.Sprintf("u%d", i)
		d.acct(id, "USD", min)
		d.xfer("world", id, 5000, "USD")
		users = append(users, acct{id, "USD"})
	}
	for i := range 4 {
		id := fmt.Sprintf("e%d", i)
		d.acct(id, "EUR", dxMin(0))
		d.xfer("world-eur", id, 5000, "EUR")
		users = append(users, acct{id, "EUR"})
	}
	worlds := map[string]string{"USD": "world", "EUR": "world-eur"}

	var (
		mu         sync.Mutex
		holds      []dxTx // holds placed
		reversible []string
		resolved   = map[string]int{} // hold → 200s to post/void
		reversed   = map[string]int{} // transaction → 200s to reverse
		ops        = map[string]int{}
	)
	note := func(what string) {
		mu.Lock()
		ops[what]++
		mu.Unlock()
	}
	// pick returns two distinct accounts of one asset; world may be
	// either side now and then.
	pick := func(rng *rand.Rand) (string, string, string) {
		a := users[rng.IntN(len(users))]
		for {
			b := users[rng.IntN(len(users))]
			if b.asset != a.asset || b.id == a.id {
				continue
			}
			src, dst := a.id, b.id
			switch rng.IntN(10) {
			case 0:
				src = worlds[a.asset]
			case 1:
				dst = worlds[a.asset]
			}
			return src, dst, a.asset
		}
	}
	postings := func(rng *rand.Rand, max int64) []map[string]any {
		src, dst, asset := pick(rng)
		ps := []map[string]any{dxP(src, dst, 1+rng.Int64N(max), asset)}
		if rng.IntN(3) == 0 {
			src, dst, asset := pick(rng)
			ps = append(ps, dxP(src, dst, 1+rng.Int64N(max), asset))
		}
		return ps
	}

	// The reader: every account snapshot (one query) satisfies
	// invariants 1 and 2; tailing the log by sequence sees every sequence
	// once, in order, and records each transaction's postings.
	seen := map[string]string{}
	var lastSeen int64
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	tail := func() error {
		for {
			r, err := d.try("GET", d.path(fmt.Sprintf("/transactions?limit=1000&after=%d", lastSeen)), dxAdmin, nil)
			if err != nil {
				return err
			}
			var pg struct {
				Data []json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &pg); err != nil {
				return err
			}
			for _, raw := range pg.Data {
				var x struct {
					ID       string          `json:"id"`
					Sequence int64           `json:"sequence"`
					Postings json.RawMessage `json:"postings"`
				}
				if err := json.Unmarshal(raw, &x); err != nil {
					return err
				}
				if x.Sequence != lastSeen+1 {
					return fmt.Errorf("tailing the log: sequence %d after %d", x.Sequence, lastSeen)
				}
				lastSeen = x.Sequence
				seen[x.ID] = string(x.Postings)
			}
			if len(pg.Data) < 1000 {
				return nil
			}
		}
	}
	go func() {
		var err error
		defer func() { readerDone <- err }()
		for {
			select {
			case <-stop:
				err = tail()
				return
			default:
			}
			var r *ledgertest.Response
			if r, err = d2.try("GET", d2.path("/accounts?limit=1000"), dxAdmin, nil); err != nil {
				return
			}
			var pg dxPage[dxAccount]
			if err = json.Unmarshal(r.Body, &pg); err != nil {
				return
			}
			sums := map[string]int64{}
			for _, a := range pg.Data {
				sums[a.Asset] += a.Balance.Posted
				if a.MinBalance != nil && a.Balance.Available < *a.MinBalance {
					err = fmt.Errorf("account %s: available %d below min_balance %d", a.ID, a.Balance.Available, *a.MinBalance)
					return
				}
			}
			for asset, s := range sums {
				if s != 0 {
					err = fmt.Errorf("posted sums to %d in %s", s, asset)
					return
				}
			}
			if err = tail(); err != nil {
				return
			}
		}
	}()

	// One hold nobody touches: the run sees at least one expiry.
	d.hold(1, dxP("u0", "u1", 1, "USD"))

	// The workers run for about 4 s, and on a slow machine on until the
	// mix has produced each kind of outcome (at most 20 s in all).
	const workers = 32
	deadline, hardStop := time.Now().Add(4*time.Second), time.Now().Add(20*time.Second)
	var captures, voids, reversals atomic.Int64
	running := func() bool {
		now := time.Now()
		covered := captures.Load() > 0 && voids.Load() > 0 && reversals.Load() > 0
		return now.Before(deadline) || !covered && now.Before(hardStop)
	}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			node := nodes[w%2]
			fail := func(err error) { errs <- fmt.Errorf("worker %d: %w", w, err) }
			expect := func(what string, r *ledgertest.Response, ok ...int) bool {
				note(fmt.Sprintf("%s %d %s", what, r.Status, r.Code()))
				if slices.Contains(ok, r.Status) {
					return true
				}
				switch r.Code() {
				case "insufficient_funds", "invalid_state":
					return false
				}
				fail(fmt.Errorf("%s: %d %s", what, r.Status, r.Body))
				return false
			}
			for i := 0; i < 1000 && running(); i++ {
				total.Add(1)
				var (
					r   *ledgertest.Response
					err error
				)
				switch op := rng.IntN(100); {
				case op < 25: // transfer
					r, err = node.try("POST", node.path("/transactions"), dxAdmin, dxBody(postings(rng, 1500)))
					if err == nil && expect("transfer", r, 201) {
						x := dxDecode[dxTx](t, r)
						mu.Lock()
						reversible = append(reversible, x.ID)
						mu.Unlock()
					}
				case op < 32: // batch, atomic or not
					var items []any
					for range 3 {
						items = append(items, dxBody(postings(rng, 1500)))
					}
					r, err = node.try("POST", node.path("/transactions/batch"), dxAdmin, map[string]any{"atomic": rng.IntN(2) == 0, "transactions": items})
					if err == nil && expect("batch", r, 200) {
						var res struct {
							Results []struct {
								Status      int             `json:"status"`
								Transaction dxTx            `json:"transaction"`
								Error       json.RawMessage `json:"error"`
							} `json:"results"`
						}
						if err = json.Unmarshal(r.Body, &res); err == nil {
							for _, it := range res.Results {
								switch {
								case it.Status == 201:
									mu.Lock()
									reversible = append(reversible, it.Transaction.ID)
									mu.Unlock()
								case it.Status != 422 || !bytes.Contains(it.Error, []byte("insufficient_funds")):
									fail(fmt.Errorf("batch item: %d %s", it.Status, it.Error))
								}
							}
						}
					}
				case op < 55: // hold
					body := dxBody(postings(rng, 800), "pending", true)
					if rng.IntN(2) == 0 {
						body["pending_timeout_seconds"] = 1
					} else if rng.IntN(2) == 0 {
						body["pending_timeout_seconds"] = 60
					}
					r, err = node.try("POST", node.path("/transactions"), dxAdmin, body)
					if err == nil && expect("hold", r, 201) {
						mu.Lock()
						holds = append(holds, dxDecode[dxTx](t, r))
						mu.Unlock()
					}
				case op < 85: // capture or void a random hold
					mu.Lock()
					if len(holds) == 0 {
						mu.Unlock()
						continue
					}
					h := holds[rng.IntN(len(holds))]
					mu.Unlock()
					action, body := "void", any(map[string]any{})
					if rng.IntN(3) > 0 {
						action = "post"
						if rng.IntN(2) == 0 {
							amounts := make([]int64, len(h.Postings))
							var sum int64
							for k, p := range h.Postings {
								amounts[k] = rng.Int64N(p.Amount + 1)
								sum += amounts[k]
							}
							if sum == 0 {
								amounts[0] = h.Postings[0].Amount
							}
							body = map[string]any{"amounts": amounts}
						}
					}
					r, err = node.try("POST", node.txURL(h.ID, action), dxAdmin, body)
					if err == nil && expect(action, r, 200) {
						x := dxDecode[dxTx](t, r)
						mu.Lock()
						resolved[h.ID]++
						if action == "post" {
							reversible = append(reversible, x.ID)
							captures.Add(1)
						} else {
							voids.Add(1)
						}
						mu.Unlock()
					}
				default: // reverse a random posted transaction or capture
					mu.Lock()
					if len(reversible) == 0 {
						mu.Unlock()
						continue
					}
					id := reversible[rng.IntN(len(reversible))]
					mu.Unlock()
					r, err = node.try("POST", node.txURL(id, "reverse"), dxAdmin, map[string]any{})
					if err == nil && expect("reverse", r, 200) {
						mu.Lock()
						reversed[id]++
						mu.Unlock()
						reversals.Add(1)
					}
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Let every 1 s hold expire.
	d.waitFor("the short holds to expire", func() bool {
		for _, x := range d.txs() {
			if x.Status == "pending" && x.ExpiresAt != "" && dxTime(t, x.ExpiresAt).Sub(x.at(t)) <= time.Second {
				return false
			}
		}
		return true
	})
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}

	log, _ := d.checkLedger(false)
	for _, x := range log {
		p, ok := seen[x.ID]
		if !ok {
			t.Fatalf("the tailing reader never saw %s (sequence %d)", x.ID, x.Sequence)
		}
		b, _ := json.Marshal(x.Postings)
		var was []dxPosting
		if err := json.Unmarshal([]byte(p), &was); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(was, x.Postings) {
			t.Fatalf("the postings of %s changed from %s to %s", x.ID, p, b)
		}
	}
	for id, n := range resolved {
		if n > 1 {
			t.Fatalf("hold %s was resolved by %d requests", id, n)
		}
	}
	for id, n := range reversed {
		if n > 1 {
			t.Fatalf("transaction %s was reversed by %d requests", id, n)
		}
	}
	status := map[string]int{}
	for _, x := range log {
		switch {
		case x.isHold():
			status["hold "+x.Status]++
		case x.PendingID != "":
			status["resolution "+x.Status]++
		case x.Reverses != "":
			status["reversal"]++
		default:
			status["transfer"]++
		}
	}
	t.Logf("%d requests, %d transactions: %v; answers %v", total.Load(), len(log), status, ops)
	for _, k := range []string{"hold captured", "hold voided", "hold expired", "reversal"} {
		if status[k] == 0 {
			t.Fatalf("the run produced no %q; it tests less than it claims: %v", k, status)
		}
	}
}
