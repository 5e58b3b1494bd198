package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// fixture is a ledger with a `world` account (min_balance null) and
// accounts with min_balance 0 funded from it.
type fixture struct {
	ledger   string
	asset    string
	accounts []string
	writeKey string // a write-role key of the ledger, for the clients
	setupTx  int64  // transactions the setup posted
}

// newFixture creates the ledger through base: the accounts in one account
// batch, the funding in one non-atomic transaction batch (one transaction
// per account, each with a key and a reference).
func newFixture(t testing.TB, base, ledger string, accounts int, fund int64) *fixture {
	t.Helper()
	admin := &client{base: base, key: ledgertest.AdminKey, hc: newHTTPClient(t)}
	fx := &fixture{ledger: ledger, asset: "USD"}
	admin.postJSON(t, "/v1/ledgers", map[string]any{"name": ledger}, http.StatusCreated, nil)
	var key struct {
		Key string `json:"key"`
	}
	admin.postJSON(t, "/v1/api-keys", map[string]any{"ledger": ledger, "role": "write"}, http.StatusCreated, &key)
	fx.writeKey = key.Key

	accts := []map[string]any{{"id": "world", "asset": fx.asset, "min_balance": nil}}
	for i := range accounts {
		id := fmt.Sprintf("users:%03d", i)
		fx.accounts = append(fx.accounts, id)
		accts = append(accts, map[string]any{"id": id, "asset": fx.asset, "min_balance": 0})
	}
	var ar struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	admin.postJSON(t, "/v1/ledgers/"+ledger+"/accounts/batch", map[string]any{"accounts": accts}, http.StatusOK, &ar)
	for i, r := range ar.Results {
		if r.Status != http.StatusCreated {
			t.Fatalf("setup: account %d answered %d", i, r.Status)
		}
	}
	var txs []txRequest
	for i, id := range fx.accounts {
		txs = append(txs, txRequest{Postings: []postingJSON{{Source: "world", Destination: id, Amount: fund, Asset: fx.asset}},
			Reference: fmt.Sprintf("setup-%d", i), IdempotencyKey: fmt.Sprintf("setup-%d", i)})
	}
	var br batchReplyJSON
	admin.postJSON(t, batchPath(ledger), map[string]any{"atomic": false, "transactions": txs}, http.StatusOK, &br)
	for i, r := range br.Results {
		if r.Status != http.StatusCreated {
			t.Fatalf("setup: funding %d answered %d %+v", i, r.Status, r.Error)
		}
	}
	fx.setupTx = int64(len(fx.accounts))
	return fx
}

// pair picks two distinct accounts.
func (fx *fixture) pair(rng *rand.Rand) (string, string) {
	i := rng.IntN(len(fx.accounts))
	j := rng.IntN(len(fx.accounts) - 1)
	if j >= i {
		j++
	}
	return fx.accounts[i], fx.accounts[j]
}

// overdraft is more than all the money in a fixture: a transfer of it must
// be refused (insufficient_funds) whatever the balances are.
const overdraft = int64(1) << 50

// loadConfig describes a closed-loop load of random single-posting
// transfers among a fixture's accounts.
type loadConfig struct {
	fx           *fixture
	nodes        []*client // worker i talks to nodes[i%len(nodes)]
	workers      int
	duration     time.Duration // the load stops after this…
	maxPerWorker int           // …or after this many requests per worker
	seed         uint64
}

// loadResult is what the clients were told.
type loadResult struct {
	created    atomic.Int64 // transactions acknowledged: 201, or a 200 replay after an attempt without answer
	rejected   atomic.Int64 // insufficient_funds
	requests   atomic.Int64 // HTTP requests sent (single or batch), retries excluded
	overdrafts atomic.Int64 // deliberate overdrafts sent
	answers    statusLog    // every attempt's answer
}

var keySeq atomic.Int64

// newKey returns an Idempotency-Key (or reference) unique in the test binary.
func newKey(prefix string) string { return fmt.Sprintf("%s-%d", prefix, keySeq.Add(1)) }

// runLoad runs the load and returns when every worker has a definite
// answer for every request it sent. Workers mix single transfers (5 % of
// them overdrafts), non-atomic batches and atomic batches (some with an
// overdraft inside); every transaction has a unique Idempotency-Key and half
// of them a reference. An answer that docs/api.md rules out (a 5xx other than
// 503, an accepted overdraft, a replay of a fresh key, an unexpected code)
// fails the test.
func runLoad(t testing.TB, cfg loadConfig) *loadResult {
	t.Helper()
	res := &loadResult{}
	ef := &errorf{t: t}
	end := time.Now().Add(cfg.duration)
	var wg sync.WaitGroup
	for w := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := &loadWorker{cfg: cfg, res: res, ef: ef, c: cfg.nodes[w%len(cfg.nodes)],
				rng: rand.New(rand.NewPCG(cfg.seed, uint64(w)))}
			for i := 0; i < cfg.maxPerWorker && time.Now().Before(end); i++ {
				res.requests.Add(1)
				switch x := lw.rng.IntN(100); {
				case x < 5:
					lw.batch(true)
				case x < 10:
					lw.batch(false)
				default:
					lw.single()
				}
			}
		}()
	}
	wg.Wait()
	return res
}

type loadWorker struct {
	cfg loadConfig
	res *loadResult
	ef  *errorf
	c   *client
	rng *rand.Rand
}

// transfer draws one transaction request; overdraw forces an overdraft.
func (lw *loadWorker) transfer(overdraw bool) txRequest {
	src, dst := lw.cfg.fx.pair(lw.rng)
	amount := 1 + lw.rng.Int64N(50)
	if overdraw {
		amount = overdraft
		lw.res.overdrafts.Add(1)
	}
	tx := txRequest{Postings: []postingJSON{{Source: src, Destination: dst, Amount: amount, Asset: lw.cfg.fx.asset}}}
	if lw.rng.IntN(2) == 0 {
		tx.Reference = newKey("ref")
	}
	return tx
}

func (lw *loadWorker) single() {
	tx := lw.transfer(lw.rng.IntN(100) < 5)
	key := newKey("key")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, attempts, err := lw.c.send(ctx, txPath(lw.cfg.fx.ledger), mustJSONNoFail(tx), key, lw.res.answers.add)
	if err != nil {
		lw.ef.Errorf("transfer %s: %v", key, err)
		return
	}
	switch {
	case r.status == http.StatusCreated || (r.status == http.StatusOK && r.replayed() && attempts > 1):
		var got txJSON
		if err := json.Unmarshal(r.body, &got); err != nil {
			lw.ef.Errorf("transfer %s: %v", key, err)
			return
		}
		lw.checkEcho(key, tx, &got)
		lw.res.created.Add(1)
	case r.status == http.StatusUnprocessableEntity && r.problem().Code == "insufficient_funds":
		lw.res.rejected.Add(1)
	default:
		lw.ef.Errorf("transfer %s (%+v) after %d attempts: unexpected %s", key, tx.Postings, attempts, r)
	}
}

// checkEcho compares an acknowledged transaction with its request.
func (lw *loadWorker) checkEcho(key string, req txRequest, got *txJSON) {
	if req.Postings[0].Amount == overdraft {
		lw.ef.Errorf("constraints: overdraft %s (%+v) was accepted as transaction %d", key, req.Postings, got.Sequence)
	}
	if got.ID == "" || got.Sequence < 1 || got.Status != "posted" || got.ref() != req.Reference ||
		!slices.Equal(got.Postings, req.Postings) {
		lw.ef.Errorf("transfer %s: answer %+v does not match request %+v", key, got, req)
	}
}

func (lw *loadWorker) batch(atomicBatch bool) {
	n := 2 + lw.rng.IntN(9)
	bad := -1 // the deliberate overdraft of an atomic batch, if any
	if atomicBatch && lw.rng.IntN(100) < 30 {
		bad = lw.rng.IntN(n)
	}
	items := make([]txRequest, n)
	for i := range items {
		overdraw := i == bad || (!atomicBatch && lw.rng.IntN(100) < 5)
		items[i] = lw.transfer(overdraw)
		items[i].IdempotencyKey = newKey("item")
	}
	body := mustJSONNoFail(map[string]any{"atomic": atomicBatch, "transactions": items})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, attempts, err := lw.c.send(ctx, batchPath(lw.cfg.fx.ledger), body, "", lw.res.answers.add)
	if err != nil {
		lw.ef.Errorf("batch (atomic %v): %v", atomicBatch, err)
		return
	}
	if atomicBatch && r.status == http.StatusUnprocessableEntity {
		p := r.problem()
		if p.Code != "insufficient_funds" || p.Index == nil || *p.Index < 0 || *p.Index >= n || (bad >= 0 && *p.Index > bad) {
			lw.ef.Errorf("atomic batch (overdraft at %d): unexpected %s", bad, r)
		}
		lw.res.rejected.Add(1)
		return
	}
	if r.status != http.StatusOK {
		lw.ef.Errorf("batch (atomic %v) after %d attempts: unexpected %s", atomicBatch, attempts, r)
		return
	}
	var br batchReplyJSON
	if err := json.Unmarshal(r.body, &br); err != nil || len(br.Results) != n {
		lw.ef.Errorf("batch (atomic %v): %d results for %d items (%v): %s", atomicBatch, len(br.Results), n, err, r)
		return
	}
	for i, it := range br.Results {
		switch {
		case it.Transaction != nil && (it.Status == http.StatusCreated || (it.Status == http.StatusOK && attempts > 1)):
			lw.checkEcho(items[i].IdempotencyKey, txRequest{Postings: items[i].Postings, Reference: items[i].Reference}, it.Transaction)
			lw.res.created.Add(1)
		case !atomicBatch && it.Status == http.StatusUnprocessableEntity && it.Error != nil && it.Error.Code == "insufficient_funds":
			lw.res.rejected.Add(1)
		default:
			lw.ef.Errorf("batch (atomic %v) item %d of %d after %d attempts: unexpected status %d %+v", atomicBatch, i, n, attempts, it.Status, it.Error)
		}
	}
}

func mustJSONNoFail(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// observer checks, while writers run, what any reader may see at any
// moment (docs/api.md §Invariants 1, 2 and 5), through every node in turn:
//   - one page of GET …/accounts (a single statement, so one snapshot)
//     sums to 0 per asset and shows no available below min_balance;
//   - a consumer tailing GET …/transactions?after=N never sees a gap or a
//     created_at that decreases: whoever sees sequence N sees all below.
type observer struct {
	checks atomic.Int64
	tailed atomic.Int64 // last sequence the tail saw
	done   chan struct{}
	cancel context.CancelFunc
}

func startObserver(t testing.TB, nodes []string, ledger string) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{done: make(chan struct{}), cancel: cancel}
	ef := &errorf{t: t}
	hc := newHTTPClient(t)
	var clients []*client
	for _, b := range nodes {
		clients = append(clients, &client{base: b, key: ledgertest.AdminKey, hc: hc})
	}
	get := func(c *client, path string, v any) bool {
		r, err := c.do(ctx, http.MethodGet, path, nil, "")
		if indefinite(r, err) {
			return false
		}
		if r.status != http.StatusOK {
			ef.Errorf("observer: GET %s: %s", path, r)
			return false
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			ef.Errorf("observer: GET %s: %v", path, err)
			return false
		}
		return true
	}
	go func() {
		defer close(o.done)
		var last int64
		var lastAt time.Time
		for i := 0; ctx.Err() == nil; i++ {
			c := clients[i%len(clients)]
			var accts struct {
				Data       []accountJSON `json:"data"`
				NextCursor *string       `json:"next_cursor"`
			}
			if get(c, "/v1/ledgers/"+ledger+"/accounts?limit=1000", &accts) && accts.NextCursor == nil {
				sums := map[string]*big.Int{}
				for _, a := range accts.Data {
					if sums[a.Asset] == nil {
						sums[a.Asset] = new(big.Int)
					}
					sums[a.Asset].Add(sums[a.Asset], big.NewInt(a.Balance.Posted))
					if a.MinBalance != nil && a.Balance.Available < *a.MinBalance {
						ef.Errorf("constraints (observed during load): account %s available %d < min_balance %d", a.ID, a.Balance.Available, *a.MinBalance)
					}
				}
				for asset, s := range sums {
					if s.Sign() != 0 {
						ef.Errorf("double entry (observed during load): %s sums to %s", asset, s)
					}
				}
				o.checks.Add(1)
			}
			var page struct {
				Data []txJSON `json:"data"`
			}
			if get(c, fmt.Sprintf("/v1/ledgers/%s/transactions?after=%d&limit=1000", ledger, last), &page) {
				for _, tx := range page.Data {
					if tx.Sequence != last+1 {
						ef.Errorf("order (observed during load): after sequence %d the tail shows %d", last, tx.Sequence)
					}
					if tx.CreatedAt.Before(lastAt) {
						ef.Errorf("order (observed during load): created_at of %d (%v) before %v", tx.Sequence, tx.CreatedAt, lastAt)
					}
					last, lastAt = tx.Sequence, tx.CreatedAt
				}
				o.tailed.Store(last)
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return o
}

func (o *observer) stop() {
	o.cancel()
	<-o.done
}
