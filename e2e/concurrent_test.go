package e2e

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/ledgertest"
)

const (
	loadAccounts = 50
	loadFunding  = 1_000 // per account: small, so that transfers drain accounts and get refused
	loadWorkers  = 64
	loadDuration = 5 * time.Second
	loadMaxReqs  = 5_000 // per worker
)

// TestConcurrentTransfers: 64 clients against one node, with overdrafts and
// batches of both kinds mixed in. Invariants 1 (double entry), 2
// (min_balance under concurrency) and 5 (gap-free, ordered log), both while
// the load runs and afterwards, and every acknowledgement is a stored
// transaction (201s + setup = last_sequence, balances = postings).
func TestConcurrentTransfers(t *testing.T) {
	env := ledgertest.Start(t, ledgertest.Options{DatabaseURL: ledgertest.NewDatabase(t)})
	testConcurrentTransfers(t, []string{env.URL})
}

// TestConcurrentTransfersOverlapped is TestConcurrentTransfers with every
// batch overlapped with the one ahead (batch.Config.OverlapMin 1; by
// default only batches of 256 and more are): it is applied on the
// outcome of the batch still committing and inserts its rows before it
// takes the ordering lock (postgres/fastpath.go), so a refused atomic
// batch or a failed commit ahead must take it down too.
//
// Three batches may be in the air (OverlapFlights 3, one more than by
// default): a failure takes down the two behind it.
func TestConcurrentTransfersOverlapped(t *testing.T) {
	env := ledgertest.Start(t, ledgertest.Options{DatabaseURL: ledgertest.NewDatabase(t),
		Commit: batch.Config{OverlapMin: 1, OverlapFlights: 3}})
	testConcurrentTransfers(t, []string{env.URL})
}

// TestConcurrentTransfersTwoNodes is TestConcurrentTransfers with two
// `ledgerd serve` processes on one database and the clients spread over
// both: the ordering lock, not a process, must serialise the ledger. One
// node overlaps every batch with the one ahead (LEDGERD_COMMIT_OVERLAP_MIN
// 1), so its lock requests queue behind the other node's batches.
func TestConcurrentTransfersTwoNodes(t *testing.T) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	a := startNode(t, bin, "node-a", db, "LEDGERD_COMMIT_OVERLAP_MIN=1")
	b := startNode(t, bin, "node-b", db)
	testConcurrentTransfers(t, []string{a.URL(), b.URL()})
}

func testConcurrentTransfers(t *testing.T, nodes []string) {
	fx := newFixture(t, nodes[0], "concurrent", loadAccounts, loadFunding)
	hc := newHTTPClient(t)
	var clients []*client
	for _, n := range nodes {
		clients = append(clients, &client{base: n, key: fx.writeKey, hc: hc})
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	obs := startObserver(t, nodes, fx.ledger)
	res := runLoad(t, loadConfig{fx: fx, nodes: clients, workers: loadWorkers, duration: loadDuration,
		maxPerWorker: loadMaxReqs, seed: seed})
	obs.stop()
	t.Logf("%d requests (%d overdrafts): %d transactions acknowledged, %d refused; answers: %s; observer: %d snapshots, tailed to %d",
		res.requests.Load(), res.overdrafts.Load(), res.created.Load(), res.rejected.Load(), res.answers.String(),
		obs.checks.Load(), obs.tailed.Load())
	if len(res.answers.failures) > 0 {
		t.Errorf("5xx other than 503: %q", res.answers.failures)
	}
	if res.created.Load() == 0 || res.rejected.Load() == 0 {
		t.Errorf("the load should both post and refuse transfers (posted %d, refused %d)", res.created.Load(), res.rejected.Load())
	}
	if obs.checks.Load() == 0 {
		t.Errorf("the observer never saw a consistent account page")
	}
	for _, n := range nodes {
		checkInvariants(t, n, fx.ledger, fx.setupTx+res.created.Load())
	}
}
