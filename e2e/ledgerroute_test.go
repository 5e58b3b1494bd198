package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestLedgerRoutedWrites runs HAProxy with the configuration
// scripts/topology.sh ships (TOPOLOGY_BALANCE=ledger) over three nodes:
// every write of a ledger reaches one node, so that the ledger has one
// group-commit writer rather than three taking turns at its lock
// (docs/scaling.md, "One ledger, many nodes"); reads still reach every
// node; and once that node is killed, the ledger's writes move to one
// other node and succeed, with the invariants intact.
func TestLedgerRoutedWrites(t *testing.T) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, bin, fmt.Sprintf("node%d", i+1), db, "LEDGERD_DEBUG_ADDR="+freeAddr(t)))
	}
	addr := freeAddr(t)
	args := []string{"haproxy-config", addr, "ledger"}
	for _, n := range nodes {
		args = append(args, n.addr)
	}
	cfg, err := exec.Command("../scripts/topology.sh", args...).Output()
	if err != nil {
		t.Fatalf("scripts/topology.sh haproxy-config: %v", err)
	}
	lb := runHAProxy(t, addr, string(cfg))
	fx := newFixture(t, lb.URL(), "routed", 20, 1_000_000)
	c := &client{base: lb.URL(), key: fx.writeKey, hc: newHTTPClient(t)}

	const postRoute, getRoute = "POST /v1/ledgers/{ledger}/transactions", "GET /v1/ledgers/{ledger}/accounts/{account}"
	// served counts, per node, the requests of route it has answered.
	served := func(route string, alive []*node) []int {
		counts := make([]int, len(alive))
		for i, n := range alive {
			_, fams := scrape(t, n.debugAddr())
			for _, m := range fams["ledgerd_http_request_duration_seconds"].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "route" && l.GetValue() == route {
						counts[i] += int(m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
		return counts
	}
	delta := func(a, b []int) []int {
		d := make([]int, len(a))
		for i := range a {
			d[i] = b[i] - a[i]
		}
		return d
	}
	const n = 30
	transfers := func(round int) {
		t.Helper()
		for i := range n {
			body := mustJSONNoFail(txRequest{Postings: []postingJSON{{Source: fx.accounts[i%len(fx.accounts)],
				Destination: fx.accounts[(i+1)%len(fx.accounts)], Amount: 1, Asset: fx.asset}}})
			key := fmt.Sprintf("routed-%d-%d", round, i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var r *reply
			var err error
			for {
				r, err = c.do(ctx, http.MethodPost, txPath(fx.ledger), body, key)
				if !throughBalancerInDoubt(r, err) || ctx.Err() != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if err != nil || r.status != http.StatusCreated {
				t.Fatalf("transfer %s: %v %v", key, r, err)
			}
		}
	}
	owner := func(d []int) int {
		t.Helper()
		own := -1
		for i, v := range d {
			switch {
			case v == n && own < 0:
				own = i
			case v != 0:
				t.Fatalf("the ledger's %d transfers reached the nodes as %v: want all on one", n, d)
			}
		}
		if own < 0 {
			t.Fatalf("the ledger's %d transfers reached the nodes as %v: want all on one", n, d)
		}
		return own
	}

	before := served(postRoute, nodes)
	transfers(1)
	first := owner(delta(before, served(postRoute, nodes)))
	t.Logf("the ledger's writes went to node%d", first+1)

	before = served(getRoute, nodes)
	for i := range n {
		var a accountJSON
		c.getJSON(t, "/v1/ledgers/"+fx.ledger+"/accounts/"+fx.accounts[i%len(fx.accounts)], &a)
	}
	for i, v := range delta(before, served(getRoute, nodes)) {
		if v == 0 {
			t.Errorf("node%d answered none of %d reads: reads must stay round-robin", i+1, n)
		}
	}

	nodes[first].kill9()
	var rest []*node
	for i, nd := range nodes {
		if i != first {
			rest = append(rest, nd)
		}
	}
	// HAProxy takes the node out after two failed checks (fastinter
	// 250 ms); until then a request to it is redispatched.
	time.Sleep(1500 * time.Millisecond)
	before = served(postRoute, rest)
	transfers(2)
	second := owner(delta(before, served(postRoute, rest)))
	t.Logf("after node%d was killed, they went to %s", first+1, rest[second].name)

	checkInvariants(t, lb.URL(), fx.ledger, fx.setupTx+2*n)
}
