package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestPostgresImmediateRestart restarts PostgreSQL (immediate shutdown,
// crash recovery) under an in-process node while at least 32 requests are
// in flight. Invariant 3: requests then may get 503 but never 500, no
// acknowledged transaction is lost, and the node recovers by itself (its
// pool reconnects) so that every request, retried with its key, ends in a
// definite answer; invariants 1, 2, 4 and 5 hold afterwards.
//
// It restarts the cluster that the whole test binary shares, which is safe
// because no test of this package runs in parallel (see main_test.go).
func TestPostgresImmediateRestart(t *testing.T) { testPostgresImmediateRestart(t, batch.Config{}) }

// TestPostgresImmediateRestartOverlapped is the same with every batch
// overlapped with the one ahead (OverlapMin 1): the restart cuts off two
// batches of a ledger, one committing and one applied on its outcome and
// inserting behind it; neither may be answered unless it is in the
// database.
func TestPostgresImmediateRestartOverlapped(t *testing.T) {
	testPostgresImmediateRestart(t, batch.Config{OverlapMin: 1, OverlapFlights: 3})
}

func testPostgresImmediateRestart(t *testing.T, commit batch.Config) {
	db := ledgertest.NewDatabase(t)
	cluster := ledgertest.Cluster(t)
	if cluster == nil {
		t.Skip("DATABASE_URL is set: no cluster of our own to restart")
	}
	env := ledgertest.Start(t, ledgertest.Options{DatabaseURL: db, Commit: commit})
	fx := newFixture(t, env.URL, "pgrestart", loadAccounts, 1_000_000_000)
	c := &client{base: env.URL, key: fx.writeKey, hc: newHTTPClient(t)}
	ef := &errorf{t: t}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	const clients = 48
	var (
		mu        sync.Mutex
		sent      []*sentRequest
		answers   statusLog
		inFlight  atomic.Int64
		stop      atomic.Bool
		restarted atomic.Bool
		afterOK   atomic.Int64 // successes of requests first sent after the restart
		wg        sync.WaitGroup
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !stop.Load() {
				src, dst := fx.pair(rng)
				s := &sentRequest{key: newKey("pgkey"), ref: newKey("pgref"),
					tx: txRequest{Postings: []postingJSON{{Source: src, Destination: dst, Amount: 1 + rng.Int64N(100), Asset: fx.asset}}}}
				s.tx.Reference = s.ref
				s.body = mustJSONNoFail(s.tx)
				after := restarted.Load()
				mu.Lock()
				sent = append(sent, s)
				mu.Unlock()
				// Retry 503s and transport errors with the same key until a
				// definite answer; the bound only keeps a broken node from
				// hanging the test.
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				inFlight.Add(1)
				r, attempts, err := c.send(ctx, txPath(fx.ledger), s.body, s.key, func(r *reply, err error) {
					answers.add(r, err)
					if err == nil && r.status >= 500 && r.status != http.StatusServiceUnavailable {
						ef.Errorf("durability: %s answered %s during the PostgreSQL restart", s.key, r)
					}
				})
				inFlight.Add(-1)
				cancel()
				if err != nil {
					ef.Errorf("%s: %v (did the node's pool not recover after the restart?)", s.key, err)
					return
				}
				s.inDoubt = attempts > 1
				if err := s.settle(r); err != nil {
					ef.Errorf("%s after %d attempts: %v", s.key, attempts, err)
					return
				}
				if after && s.succeeded() {
					afterOK.Add(1)
				}
			}
		}()
	}

	time.Sleep(500 * time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for inFlight.Load() < kill9InFlight && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	flying := inFlight.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err := cluster.RestartImmediate(ctx)
	cancel()
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	restarted.Store(true)
	// Keep the load on until the node has served fresh requests after the
	// restart (bounded), then let every client settle its last request.
	deadline = time.Now().Add(60 * time.Second)
	for afterOK.Load() < 200 && time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	var ok, retried, replays int64
	for _, s := range sent {
		if s.succeeded() {
			ok++
		}
		if s.inDoubt {
			retried++
			if s.replayed {
				replays++
			}
		}
	}
	t.Logf("restarted with %d requests in flight; %d requests, %d acknowledged, %d after the restart; %d needed retries, %d of them were replays; answers: %s",
		flying, len(sent), ok, afterOK.Load(), retried, replays, answers.String())
	if flying < kill9InFlight {
		t.Errorf("only %d requests were in flight at the restart", flying)
	}
	if afterOK.Load() == 0 {
		t.Fatalf("no request sent after the restart succeeded: the node did not recover")
	}
	if len(answers.failures) > 0 {
		t.Errorf("5xx other than 503: %q", answers.failures)
	}

	st := checkInvariants(t, env.URL, fx.ledger, fx.setupTx+ok)
	admin := &client{base: env.URL, key: ledgertest.AdminKey, hc: c.hc}
	for _, s := range sent {
		tx := st.ByRef[s.ref]
		switch {
		case !s.succeeded():
			if tx != nil {
				ef.Errorf("%s was refused but is stored as %s", s.key, tx.ID)
			}
		case tx == nil || tx.ID != s.txID || !slices.Equal(tx.Postings, s.tx.Postings):
			ef.Errorf("durability: acknowledged %s (%s) is not stored as acknowledged: %+v", s.key, s.txID, tx)
		case s.inDoubt:
			// The ones that went through the restart: also by id.
			var got txJSON
			admin.getJSON(t, txPath(fx.ledger)+"/"+s.txID, &got)
			if got.ID != s.txID {
				ef.Errorf("durability: GET %s gave %s", s.txID, got.ID)
			}
		}
	}
	// Everything stored was sent.
	byRef := map[string]bool{}
	for _, s := range sent {
		byRef[s.ref] = true
	}
	for _, tx := range st.Txs {
		if tx.Sequence > fx.setupTx && !byRef[tx.ref()] {
			ef.Errorf("stored transaction %d (%s) was never sent", tx.Sequence, tx.ID)
		}
	}
}
