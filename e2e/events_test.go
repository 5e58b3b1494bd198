package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// eventJSON is an event as GET …/events lists it.
type eventJSON struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type eventPageJSON struct {
	Data       []eventJSON `json:"data"`
	NextCursor *string     `json:"next_cursor"`
}

// eventTail follows a ledger's events the way a consumer does: from the
// last event it saw, or from next_cursor. It checks every page as it
// arrives: transaction events in sequence order without a gap, no event
// twice.
type eventTail struct {
	t       testing.TB
	clients []*client
	ledger  string
	r       *rand.Rand
	after   string
	seq     int64 // the last transaction sequence seen
	seen    map[string]bool
	events  []eventJSON
	pages   int
}

// page reads one page, on one of the nodes, and returns whether the read
// reached the end of what is committed.
func (et *eventTail) page(limit int) bool {
	et.t.Helper()
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if et.after != "" {
		q.Set("after", et.after)
	}
	var p eventPageJSON
	et.clients[et.r.IntN(len(et.clients))].getJSON(et.t, "/v1/ledgers/"+et.ledger+"/events?"+q.Encode(), &p)
	et.pages++
	for _, ev := range p.Data {
		if et.seen[ev.ID] {
			et.t.Fatalf("page %d: event %s again", et.pages, ev.ID)
		}
		et.seen[ev.ID] = true
		if strings.HasPrefix(ev.Type, "transaction.") {
			var tx struct {
				Sequence int64 `json:"sequence"`
			}
			if err := json.Unmarshal(ev.Data, &tx); err != nil {
				et.t.Fatal(err)
			}
			if tx.Sequence != et.seq+1 {
				et.t.Fatalf("page %d: transaction event %s has sequence %d after %d: a gap or out of order", et.pages, ev.ID, tx.Sequence, et.seq)
			}
			et.seq = tx.Sequence
		}
		et.events = append(et.events, ev)
		et.after = ev.ID
	}
	if p.NextCursor != nil {
		et.after = *p.NextCursor
		return false
	}
	return true
}

// TestEventsTailedDuringConcurrentWrites: two `ledgerd serve` nodes take
// concurrent writes of every kind (transfers alone and in batches, holds
// captured or voided, reversals, accounts alone and in batches) while a
// reader tails GET …/events through both. Every page is in order and
// gap-free; after the writers stop, reading everything again from the
// start gives exactly what the tailer saw, so no event appeared behind it;
// and there is one transaction event per sequence and one account.created
// per account.
func TestEventsTailedDuringConcurrentWrites(t *testing.T) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	nodes := []*node{startNode(t, bin, "node-a", db), startNode(t, bin, "node-b", db)}
	hc := newHTTPClient(t)
	const ledger = "tail"
	admin := &client{base: nodes[0].URL(), key: ledgertest.AdminKey, hc: hc}
	admin.postJSON(t, "/v1/ledgers", map[string]any{"name": ledger}, http.StatusCreated, nil)
	var key struct {
		Key string `json:"key"`
	}
	admin.postJSON(t, "/v1/api-keys", map[string]any{"ledger": ledger, "role": "read"}, http.StatusCreated, &key)
	var writers, readers []*client
	for _, n := range nodes {
		writers = append(writers, &client{base: n.URL(), key: ledgertest.AdminKey, hc: hc})
		readers = append(readers, &client{base: n.URL(), key: key.Key, hc: hc})
	}
	base := "/v1/ledgers/" + ledger
	accts := []map[string]any{{"id": "world", "asset": "USD", "min_balance": nil}}
	const users = 10
	for i := range users {
		accts = append(accts, map[string]any{"id": fmt.Sprintf("u%d", i), "asset": "USD"})
	}
	admin.postJSON(t, base+"/accounts/batch", map[string]any{"accounts": accts}, http.StatusOK, nil)
	var accountsCreated atomic.Int64
	accountsCreated.Store(int64(len(accts)))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var writes atomic.Int64
	post := func(c *client, path string, body any, key string) *reply {
		b, _ := json.Marshal(body)
		r, _, err := c.send(context.Background(), path, b, key, nil)
		if err != nil {
			t.Errorf("POST %s: %v", path, err)
			return nil
		}
		if r.status >= 500 {
			t.Errorf("POST %s: %s", path, r)
		}
		writes.Add(1)
		return r
	}
	move := func(from, to string, amount int) map[string]any {
		return map[string]any{"postings": []map[string]any{{"source": from, "destination": to, "amount": amount, "asset": "USD"}}}
	}
	idOf := func(r *reply) string {
		var v struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(r.body, &v)
		return v.ID
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ctx.Err() == nil && i < 400; i++ {
				c := writers[r.IntN(len(writers))]
				k := fmt.Sprintf("w%d-%d", w, i)
				u := fmt.Sprintf("u%d", r.IntN(users))
				v := fmt.Sprintf("u%d", r.IntN(users))
				switch r.IntN(7) {
				case 0:
					post(c, base+"/transactions", move("world", u, 100), k)
				case 1:
					var items []map[string]any
					for j := range 5 {
						m := move("world", fmt.Sprintf("u%d", (j+w)%users), 10)
						m["idempotency_key"] = fmt.Sprintf("%s-%d", k, j)
						items = append(items, m)
					}
					post(c, base+"/transactions/batch", map[string]any{"atomic": r.IntN(2) == 0, "transactions": items}, "")
				case 2, 3:
					if u == v {
						continue
					}
					h := move(u, v, 1)
					h["pending"] = true
					if hr := post(c, base+"/transactions", h, k); hr != nil && hr.status == http.StatusCreated {
						action := []string{"post", "void"}[r.IntN(2)]
						post(writers[r.IntN(len(writers))], base+"/transactions/"+idOf(hr)+"/"+action, map[string]any{}, k+"-r")
					}
				case 4:
					if tr := post(c, base+"/transactions", move("world", u, 5), k); tr != nil && tr.status == http.StatusCreated && r.IntN(2) == 0 {
						post(writers[r.IntN(len(writers))], base+"/transactions/"+idOf(tr)+"/reverse", map[string]any{"force": true}, k+"-r")
					}
				case 5:
					if ar := post(c, base+"/accounts", map[string]any{"id": "a-" + k, "asset": "USD"}, k); ar != nil && ar.status == http.StatusCreated {
						accountsCreated.Add(1)
					}
				case 6:
					var as []map[string]any
					for j := range 3 {
						as = append(as, map[string]any{"id": fmt.Sprintf("b-%s-%d", k, j), "asset": "USD"})
					}
					if br := post(c, base+"/accounts/batch", map[string]any{"accounts": as}, ""); br != nil {
						accountsCreated.Add(int64(strings.Count(string(br.body), `"status":201`)))
					}
				}
			}
		}()
	}

	tail := &eventTail{t: t, clients: readers, ledger: ledger, r: rand.New(rand.NewPCG(1, 2)), seen: map[string]bool{}}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	writing := true
	for writing {
		select {
		case <-done:
			writing = false
		default:
		}
		tail.page(1 + tail.r.IntN(50))
	}
	// Catch up with what is committed now that the writers are done.
	for deadline := time.Now().Add(30 * time.Second); !tail.page(200); {
		if time.Now().After(deadline) {
			t.Fatal("the tail did not catch up within 30 s")
		}
	}
	if t.Failed() {
		return
	}

	// Read everything again from the start: nothing may have appeared
	// behind the tailer.
	again := &eventTail{t: t, clients: readers, ledger: ledger, r: rand.New(rand.NewPCG(3, 4)), seen: map[string]bool{}}
	for !again.page(1000) {
	}
	if len(again.events) != len(tail.events) {
		t.Fatalf("the tailer saw %d events, a full read finds %d", len(tail.events), len(again.events))
	}
	for i := range again.events {
		if again.events[i].ID != tail.events[i].ID || string(again.events[i].Data) != string(tail.events[i].Data) {
			t.Fatalf("event %d: the tailer saw %s %s, a full read finds %s %s", i,
				tail.events[i].ID, tail.events[i].Data, again.events[i].ID, again.events[i].Data)
		}
	}
	var l struct {
		LastSequence int64 `json:"last_sequence"`
	}
	admin.getJSON(t, base, &l)
	accounts := 0
	for _, ev := range tail.events {
		if ev.Type == "account.created" {
			accounts++
		}
	}
	if tail.seq != l.LastSequence || int64(accounts) != accountsCreated.Load() || l.LastSequence < 100 {
		t.Fatalf("events: %d transactions (ledger's last sequence %d), %d account.created (%d accounts created)",
			tail.seq, l.LastSequence, accounts, accountsCreated.Load())
	}
	t.Logf("%d writes; tailed %d events (%d transactions, %d accounts) in %d pages", writes.Load(), len(tail.events),
		tail.seq, accounts, tail.pages)
}
