package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestTwoWritersOverlapped runs two group-commit writers (two nodes) on
// one ledger, each overlapping every fast batch with the ones ahead, on a
// few hot accounts with floors, so that batches of both fail their
// guards all the time and each often sees the other commit as many
// transactions as its batch ahead held. Afterwards every balance must be
// the fold of the stored postings, the ledger must sum to zero, and
// created_at must never go backwards along the sequence.
// TWO_WRITERS_SECONDS lengthens it (default 3).
func TestTwoWritersOverlapped(t *testing.T) {
	ctx := context.Background()
	url := ledgertest.NewDatabase(t)
	var dbs []*postgres.DB
	for range 2 {
		db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 6})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs = append(dbs, db)
	}
	l, err := dbs[0].CreateLedger(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	ids := []string{"world"}
	nas := []ledgerd.NewAccount{{ID: "world", Asset: "USD"}}
	for i := range 6 {
		id := "u" + strconv.Itoa(i)
		ids = append(ids, id)
		nas = append(nas, ledgerd.NewAccount{ID: id, Asset: "USD", MinBalance: &zero})
	}
	if _, err := dbs[0].CreateAccounts(ctx, l.ID, nas); err != nil {
		t.Fatal(err)
	}
	var writers []*batch.Writer
	for _, db := range dbs {
		w := batch.New(db.BatchStore(), batch.Config{OverlapMin: 1, OverlapFlights: 3, MaxItems: 4},
			slog.New(slog.DiscardHandler), nil, func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
		t.Cleanup(w.Close)
		writers = append(writers, w)
	}
	transfer := func(from, to string, amount int64) *ledgerd.WriteUnit {
		return &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{{Request: &ledgerd.TransactionRequest{
			Postings: []ledgerd.Posting{{Source: from, Destination: to, Amount: amount, Asset: "USD"}}},
			RequestHash: []byte("h")}}}
	}
	for _, id := range ids[1:] {
		if err := writers[0].Submit(ctx, l.ID, transfer("world", id, 100)); err != nil {
			t.Fatal(err)
		}
	}
	d := 3 * time.Second
	if s, err := strconv.Atoi(os.Getenv("TWO_WRITERS_SECONDS")); err == nil {
		d = time.Duration(s) * time.Second
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			w := writers[g%2]
			for time.Now().Before(end) {
				from, to := ids[1+rng.IntN(len(ids)-1)], ids[rng.IntN(len(ids))]
				if rng.IntN(8) == 0 {
					from = "world"
				}
				if from == to { // refused by validation, which Submit does not run
					continue
				}
				u := transfer(from, to, 1+rng.Int64N(60))
				if err := w.Submit(ctx, l.ID, u); err != nil && err != batch.ErrOverloaded {
					t.Errorf("submit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()

	want := map[string]int64{}
	var last time.Time
	var seq int64
	for {
		txs, err := dbs[0].ListTransactions(ctx, l.ID, ledgerd.TxFilter{After: seq, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(txs) == 0 {
			break
		}
		for _, tx := range txs {
			if tx.Sequence != seq+1 {
				t.Fatalf("sequence %d after %d", tx.Sequence, seq)
			}
			if tx.CreatedAt.Before(last) {
				t.Errorf("created_at goes backwards at sequence %d: %v after %v", tx.Sequence, tx.CreatedAt, last)
			}
			seq, last = tx.Sequence, tx.CreatedAt
			postings := tx.Postings
			if postings == nil {
				if err := json.Unmarshal(tx.RawPostings, &postings); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range postings {
				want[p.Source] -= p.Amount
				want[p.Destination] += p.Amount
			}
		}
	}
	var sum int64
	for _, id := range ids {
		a, err := dbs[1].Account(ctx, l.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		sum += a.Balance.Posted
		if a.Balance.Posted != want[id] {
			t.Errorf("%s: balance %d, postings say %d", id, a.Balance.Posted, want[id])
		}
		if id != "world" && a.Balance.Posted < 0 {
			t.Errorf("%s below its floor: %d", id, a.Balance.Posted)
		}
	}
	if sum != 0 {
		t.Errorf("balances sum to %d", sum)
	}
	// Each account's entries must chain (posted_after and version move by
	// one leg at a time), and its row must be a state of that chain.
	for _, id := range ids {
		rows, err := dbs[0].Pool.Query(ctx, `SELECT sequence, posting_index, amount, posted_after, version, created_at
			FROM entries WHERE ledger_id = $1 AND account_id = $2 ORDER BY sequence, posting_index`, l.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		var bal, ver int64
		states := map[int64]int64{0: 0}
		broken := false
		for rows.Next() {
			var sq, amount, after, v int64
			var pi int
			var at time.Time
			if err := rows.Scan(&sq, &pi, &amount, &after, &v, &at); err != nil {
				t.Fatal(err)
			}
			if !broken && (after != bal+amount || v != ver+1) {
				t.Errorf("%s: entry at sequence %d.%d (%v): amount %d, posted_after %d version %d after %d version %d",
					id, sq, pi, at, amount, after, v, bal, ver)
				broken = true
			}
			bal, ver = after, v
			states[v] = after
		}
		rows.Close()
		var posted, v int64
		if err := dbs[0].Pool.QueryRow(ctx, `SELECT posted, version FROM accounts WHERE ledger_id = $1 AND id = $2`,
			l.ID, id).Scan(&posted, &v); err != nil {
			t.Fatal(err)
		}
		if st, ok := states[v]; !ok || st != posted {
			t.Errorf("%s: row holds %d at version %d; entries say %d (known %v), newest %d at %d", id, posted, v, st, ok, bal, ver)
		}
	}
	t.Log(fmt.Sprintf("%d transactions", seq))
}
