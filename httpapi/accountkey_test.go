package httpapi_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestAccountAndTransactionRaceForOneKey: an account creation and a
// transaction sent at once with the same Idempotency-Key, while other
// transfers keep the ledger's ordering lock busy. Account creation takes
// that lock (its account.created event is ordered under it), so it must
// take the key only under the lock, as the batch writer does: otherwise
// each may hold what the other waits for, and PostgreSQL breaks the cycle
// by failing one — a 503 for a request that did nothing wrong. One of the
// two wins the key; the other is refused with a 4xx; nothing is a 5xx.
func TestAccountAndTransactionRaceForOneKey(t *testing.T) {
	c := setup(t, ledgertest.Options{})
	l := c.e.Ledger("race")
	p := "/v1/ledgers/" + l
	c.do("POST", p+"/accounts", admin, map[string]any{"id": "world", "asset": "USD", "min_balance": nil}).Expect(t, 201)
	c.do("POST", p+"/accounts", admin, map[string]any{"id": "a", "asset": "USD"}).Expect(t, 201)
	transfer := map[string]any{"postings": []any{map[string]any{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}}}

	stop := make(chan struct{})
	var load sync.WaitGroup
	for range 6 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.e.TryDo("POST", p+"/transactions", admin, transfer)
				if err == nil && r.Status >= 500 {
					t.Errorf("background transfer: %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	var accounts atomic.Int64
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("k-%d", i)
		var wg sync.WaitGroup
		var acc, tx *ledgertest.Response
		wg.Add(2)
		go func() {
			defer wg.Done()
			acc, _ = c.e.TryDo("POST", p+"/accounts", admin, map[string]any{"id": fmt.Sprint("acc-", i), "asset": "USD"}, "Idempotency-Key", key)
		}()
		go func() {
			defer wg.Done()
			tx, _ = c.e.TryDo("POST", p+"/transactions", admin, transfer, "Idempotency-Key", key)
		}()
		wg.Wait()
		if acc == nil || tx == nil || acc.Status >= 500 || tx.Status >= 500 {
			close(stop)
			load.Wait()
			t.Fatalf("key %s: account %s, transaction %s", key, brief(acc), brief(tx))
		}
		if (acc.Status == 201) == (tx.Status == 201) {
			close(stop)
			load.Wait()
			t.Fatalf("key %s: account %d %s, transaction %d %s: exactly one may win", key, acc.Status, acc.Body, tx.Status, tx.Body)
		}
		if acc.Status == 201 {
			accounts.Add(1)
		}
	}
	close(stop)
	load.Wait()
	created := 0
	for _, s := range allEvents(c, l, admin, 1000, "account.created") {
		_ = s
		created++
	}
	if int64(created) != accounts.Load()+2 {
		t.Fatalf("%d account.created events, %d accounts created", created, accounts.Load()+2)
	}
	t.Logf("%d accounts won their key", accounts.Load())
}

func brief(r *ledgertest.Response) string {
	if r == nil {
		return "no answer"
	}
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}
