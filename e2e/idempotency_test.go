package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestIdempotencyAcrossNodes: invariant 4 across two `ledgerd serve`
// processes on one database. The same request (same key, same body) sent by
// 16 clients at once, split over both nodes — and, in every other round,
// partly as a one-item batch, which docs/api.md makes the same request — posts
// exactly one transaction: one 201, every other answer a 200 replay of the
// same id. An outcome stored before a kill -9 of the node replays after its
// restart, on both nodes.
func TestIdempotencyAcrossNodes(t *testing.T) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	nodes := []*node{startNode(t, bin, "node-a", db), startNode(t, bin, "node-b", db)}
	fx := newFixture(t, nodes[0].URL(), "idem", 4, 1_000_000)
	hc := newHTTPClient(t)
	clients := []*client{{base: nodes[0].URL(), key: fx.writeKey, hc: hc}, {base: nodes[1].URL(), key: fx.writeKey, hc: hc}}
	admin := &client{base: nodes[1].URL(), key: ledgertest.AdminKey, hc: hc}
	expected := fx.setupTx

	// lookup lists the ledger's transactions with a reference.
	lookup := func(ref string) []txJSON {
		var page struct {
			Data []txJSON `json:"data"`
		}
		admin.getJSON(t, txPath(fx.ledger)+"?reference="+url.QueryEscape(ref), &page)
		return page.Data
	}

	t.Run("racing duplicates", func(t *testing.T) {
		const rounds, senders = 20, 16
		for round := range rounds {
			key, ref := newKey("race-key"), newKey("race-ref")
			tx := txRequest{Postings: []postingJSON{{Source: "world", Destination: fx.accounts[round%len(fx.accounts)],
				Amount: int64(round + 1), Asset: fx.asset}}, Reference: ref}
			single := mustJSONNoFail(tx)
			item := tx
			item.IdempotencyKey = key
			batch := mustJSONNoFail(map[string]any{"atomic": false, "transactions": []txRequest{item}})

			type outcome struct {
				how     string
				status  int // 201, or 200 for a replay
				replay  bool
				id      string
				problem string
			}
			outcomes := make([]outcome, senders)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := clients[g%2]
					asBatch := round%2 == 1 && g%4 >= 2
					o := &outcomes[g]
					o.how = fmt.Sprintf("%s via %s", map[bool]string{false: "single", true: "batch item"}[asBatch], c.base)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					<-start
					var r *reply
					var err error
					if asBatch {
						r, err = c.do(ctx, http.MethodPost, batchPath(fx.ledger), batch, "")
					} else {
						r, err = c.do(ctx, http.MethodPost, txPath(fx.ledger), single, key)
					}
					if err != nil {
						o.problem = err.Error()
						return
					}
					o.status, o.replay = r.status, r.replayed()
					var got txJSON
					switch {
					case asBatch && r.status == http.StatusOK:
						var br batchReplyJSON
						if err := json.Unmarshal(r.body, &br); err != nil || len(br.Results) != 1 {
							o.problem = "bad batch answer " + r.String()
							return
						}
						res := br.Results[0]
						// An item's 200 is its replay (docs/api.md §Batches).
						o.status, o.replay = res.Status, res.Status == http.StatusOK
						if res.Transaction == nil {
							o.problem = fmt.Sprintf("item %d %+v", res.Status, res.Error)
							return
						}
						got = *res.Transaction
					case !asBatch && (r.status == http.StatusOK || r.status == http.StatusCreated):
						if err := json.Unmarshal(r.body, &got); err != nil {
							o.problem = err.Error()
							return
						}
					default:
						o.problem = r.String()
						return
					}
					o.id = got.ID
					if got.ref() != ref {
						o.problem = "wrong transaction " + r.String()
					}
				}()
			}
			close(start)
			wg.Wait()

			created, id := 0, ""
			for _, o := range outcomes {
				if o.status == http.StatusCreated && !o.replay {
					created++
					id = o.id
				}
			}
			if created != 1 {
				t.Errorf("round %d: %d of %d identical requests created a transaction, want exactly 1", round, created, senders)
			}
			for g, o := range outcomes {
				switch {
				case o.problem != "":
					t.Errorf("round %d, sender %d (%s): %s", round, g, o.how, o.problem)
				case o.id != id:
					t.Errorf("round %d, sender %d (%s): transaction %s, the creating answer had %s", round, g, o.how, o.id, id)
				case o.status == http.StatusCreated && !o.replay:
				case o.status != http.StatusOK || !o.replay:
					t.Errorf("round %d, sender %d (%s): %d (replayed %v), want 201 once and 200 replays", round, g, o.how, o.status, o.replay)
				}
			}
			if got := lookup(ref); len(got) != 1 || got[0].ID != id {
				t.Errorf("round %d: %d transactions stored with the reference, want 1 (%s)", round, len(got), id)
			}
			expected++
		}
	})

	t.Run("replay after kill -9", func(t *testing.T) {
		a := nodes[0]
		ca := clients[0]
		post := func(c *client, body []byte, key string) *reply {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, _, err := c.send(ctx, txPath(fx.ledger), body, key, nil)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return r
		}
		// A success and a stored refusal, answered by node A.
		okKey, okRef := newKey("crash-ok"), newKey("crash-ref")
		okBody := mustJSONNoFail(txRequest{Postings: []postingJSON{{Source: "world", Destination: fx.accounts[0], Amount: 7, Asset: fx.asset}}, Reference: okRef})
		r := post(ca, okBody, okKey)
		if r.status != http.StatusCreated {
			t.Fatalf("first post: %s", r)
		}
		var first txJSON
		_ = json.Unmarshal(r.body, &first)
		expected++
		noKey := newKey("crash-refused")
		noBody := mustJSONNoFail(txRequest{Postings: []postingJSON{{Source: fx.accounts[1], Destination: fx.accounts[2], Amount: overdraft, Asset: fx.asset}}})
		if r := post(ca, noBody, noKey); r.status != http.StatusUnprocessableEntity || r.problem().Code != "insufficient_funds" {
			t.Fatalf("overdraft: %s", r)
		}

		a.kill9()
		a.start()

		for _, c := range clients {
			r := post(c, okBody, okKey)
			var got txJSON
			_ = json.Unmarshal(r.body, &got)
			if r.status != http.StatusOK || !r.replayed() || got.ID != first.ID {
				t.Errorf("replay on %s after the kill: %s, want 200 replay of %s", c.base, r, first.ID)
			}
			r = post(c, noBody, noKey)
			if r.status != http.StatusUnprocessableEntity || !r.replayed() || r.problem().Code != "insufficient_funds" {
				t.Errorf("replay of the refusal on %s after the kill: %s, want the stored 422", c.base, r)
			}
			// Same key, another body: not the same request.
			other := mustJSONNoFail(txRequest{Postings: []postingJSON{{Source: "world", Destination: fx.accounts[0], Amount: 8, Asset: fx.asset}}, Reference: okRef})
			r = post(c, other, okKey)
			if r.status != http.StatusUnprocessableEntity || r.problem().Code != "idempotency_key_reused" {
				t.Errorf("key reused with another body on %s: %s, want 422 idempotency_key_reused", c.base, r)
			}
		}
		if got := lookup(okRef); len(got) != 1 || got[0].ID != first.ID {
			t.Errorf("%d transactions stored with the reference, want 1 (%s)", len(got), first.ID)
		}
	})

	for _, n := range nodes {
		checkInvariants(t, n.URL(), fx.ledger, expected)
	}
}
