package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// Tests of listing: the number of queries a page costs, and keyset
// pagination under concurrent inserts. (Prefix and metadata filters of
// account listing are covered by TestListAccounts in accounts_test.go.)

// dxQueryCounter counts the queries a node runs, except the expiry loop's
// periodic search for due holds, which runs on its own schedule.
type dxQueryCounter struct {
	mu  sync.Mutex
	sql []string
}

func (c *dxQueryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "status = 'pending' AND expires_at IS NOT NULL") {
		c.mu.Lock()
		c.sql = append(c.sql, data.SQL)
		c.mu.Unlock()
	}
	return ctx
}

func (c *dxQueryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the queries counted since the last take.
func (c *dxQueryCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.sql
	c.sql = nil
	return q
}

// TestListTransactionsQueryCount: a page of transactions with their
// postings costs a bounded number of queries (≤ 3), the same for a page
// of 10 as for a page of 1,000, with or without an account or time filter.
func TestListTransactionsQueryCount(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "queries", ledgertest.Options{})
	d.acct("world", "USD", nil)
	for _, id := range []string{"a", "b", "c"} {
		d.acct(id, "USD", nil)
	}
	// 1,100 transactions through the batch endpoint, every one touching a.
	for b := range 2 {
		var items []any
		for i := range 550 {
			ps := []map[string]any{dxP("world", "a", int64(1+i), "USD")}
			switch i % 3 {
			case 1:
				ps = []map[string]any{dxP("a", "b", 1, "USD"), dxP("world", "c", 2, "USD")}
			case 2:
				ps = append(ps, dxP("b", "c", 1, "USD"), dxP("c", "world", 1, "USD"))
			}
			item := dxBody(ps)
			if i%50 == 0 {
				item["reference"] = fmt.Sprintf("ref-%d-%d", b, i)
			}
			items = append(items, item)
		}
		r := d.must(200, "", "POST", d.path("/transactions/batch"), dxAdmin, map[string]any{"atomic": true, "transactions": items})
		if strings.Contains(string(r.Body), `"error"`) {
			t.Fatalf("batch: %s", r.Body[:min(len(r.Body), 2000)])
		}
	}
	log := d.txs()
	if len(log) != 1100 {
		t.Fatalf("%d transactions", len(log))
	}
	from, to := log[100].CreatedAt, log[len(log)-1].CreatedAt

	// A second node on the same database, with a query counter. The
	// bootstrap key needs no lookup; a first request warms the ledger
	// cache.
	counter := &dxQueryCounter{}
	n := d.node(ledgertest.Options{Tracer: counter})
	n.must(200, "", "GET", n.path("/transactions?limit=1"), dxAdmin, nil)

	fromT, toT := dxTime(t, from), dxTime(t, to)
	touches := func(acct string) func(dxTx) bool {
		return func(x dxTx) bool {
			for _, p := range x.Postings {
				if p.Source == acct || p.Destination == acct {
					return true
				}
			}
			return false
		}
	}
	filters := []struct {
		q    string
		keep func(dxTx) bool
	}{
		{"", func(dxTx) bool { return true }},
		{"account=a", touches("a")},
		{"account=b", touches("b")},
		{"from=" + url.QueryEscape(from), func(x dxTx) bool { return !x.at(t).Before(fromT) }},
		{"from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to), func(x dxTx) bool {
			return !x.at(t).Before(fromT) && x.at(t).Before(toT)
		}},
		{"account=c&to=" + url.QueryEscape(to), func(x dxTx) bool { return touches("c")(x) && x.at(t).Before(toT) }},
		{"reference=ref-1-500", func(x dxTx) bool { return x.Reference != nil && *x.Reference == "ref-1-500" }},
	}
	for _, f := range filters {
		filter := f.q
		var match []int64
		for _, x := range log {
			if f.keep(x) {
				match = append(match, x.Sequence)
			}
		}
		counts := map[int]int{}
		for _, limit := range []int{10, 1000} {
			counter.take()
			r := n.must(200, "", "GET", n.path(fmt.Sprintf("/transactions?limit=%d&%s", limit, filter)), dxAdmin, nil)
			queries := counter.take()
			counts[limit] = len(queries)
			if len(queries) > 3 {
				t.Fatalf("?%s&limit=%d ran %d queries:\n%s", filter, limit, len(queries), strings.Join(queries, "\n---\n"))
			}
			pg := dxDecode[dxPage[dxTx]](t, r)
			want := match[:min(limit, len(match))]
			var got []int64
			for _, x := range pg.Data {
				got = append(got, x.Sequence)
				if !slices.Equal(x.Postings, log[x.Sequence-1].Postings) {
					t.Fatalf("?%s: sequence %d listed with postings %+v, has %+v", filter, x.Sequence, x.Postings, log[x.Sequence-1].Postings)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("?%s&limit=%d listed %d transactions %v…, want %d", filter, limit, len(got), got[:min(len(got), 5)], len(want))
			}
		}
		if counts[10] != counts[1000] {
			t.Fatalf("?%s: %d queries for 10 transactions, %d for 1,000", filter, counts[10], counts[1000])
		}
		t.Logf("?%s: %d queries per page", filter, counts[1000])
	}
}

// TestListTransactionsWhileInserting: a consumer walking the log with the
// cursor (and tailing it with after=) while 8 writers post sees every
// sequence exactly once, in order, with no gap at any time (a reader that
// sees N sees everything below N); an account-filtered walk likewise sees
// exactly that account's transactions.
func TestListTransactionsWhileInserting(t *testing.T) {
	t.Parallel()
	d := dxNew(t, "walk", ledgertest.Options{})
	d2 := d.node(ledgertest.Options{})
	d.acct("world", "USD", nil)
	for i := range 4 {
		d.acct(fmt.Sprintf("u%d", i), "USD", nil)
	}

	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	done := make(chan struct{})
	for w := range writers {
		node := []*dx{d, d2}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := dxBody([]map[string]any{dxP("world", fmt.Sprintf("u%d", (w+i)%4), 1, "USD")})
				if i%7 == 3 {
					body = dxBody([]map[string]any{dxP("u0", "u1", 1, "USD")}, "pending", true)
				}
				r, err := node.try("POST", node.path("/transactions"), dxAdmin, body)
				if err == nil {
					err = dxIs(r, 201, "")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	// walk reads pages of 7 by cursor; when the log runs out it tails it
	// with after=; it stops once the writers are done and a read after
	// that finds nothing new.
	walk := func(n *dx, filter string) ([]int64, error) {
		var seen []int64
		var last int64
		cursor := ""
		finished := false
		for pages := 0; pages < 100_000; pages++ {
			select {
			case <-done:
				finished = true
			default:
			}
			p := n.path("/transactions?limit=7" + filter)
			if cursor != "" {
				p += "&cursor=" + url.QueryEscape(cursor)
			} else {
				p += fmt.Sprintf("&after=%d", last)
			}
			r, err := n.try("GET", p, dxAdmin, nil)
			if err == nil {
				err = dxIs(r, 200, "")
			}
			if err != nil {
				return nil, err
			}
			var pg dxPage[dxTx]
			if err := json.Unmarshal(r.Body, &pg); err != nil {
				return nil, err
			}
			for _, x := range pg.Data {
				if x.Sequence <= last {
					return nil, fmt.Errorf("walk%s: sequence %d after %d", filter, x.Sequence, last)
				}
				if filter == "" && x.Sequence != last+1 {
					return nil, fmt.Errorf("walk: sequence %d after %d, a gap", x.Sequence, last)
				}
				last = x.Sequence
				seen = append(seen, x.Sequence)
			}
			cursor = ""
			if pg.NextCursor != nil {
				cursor = *pg.NextCursor
			} else if finished && len(pg.Data) == 0 {
				return seen, nil
			}
		}
		return nil, fmt.Errorf("walk%s: too many pages", filter)
	}
	var all, ofU0 []int64
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		var err error
		if all, err = walk(d, ""); err != nil {
			errs <- err
		}
	}()
	go func() {
		defer readers.Done()
		var err error
		if ofU0, err = walk(d2, "&account=u0"); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	log, _ := d.checkLedger(false)
	if len(log) != writers*each || len(all) != len(log) {
		t.Fatalf("the walk saw %d transactions, the log has %d, want %d", len(all), len(log), writers*each)
	}
	var want []int64
	for _, x := range log {
		for _, p := range x.Postings {
			if p.Source == "u0" || p.Destination == "u0" {
				want = append(want, x.Sequence)
				break
			}
		}
	}
	if fmt.Sprint(ofU0) != fmt.Sprint(want) {
		t.Fatalf("the walk of u0 saw %v, want %v", ofU0, want)
	}
}
