package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// BenchmarkWriteBatch measures the database side of group commit: one
// WriteBatch of batch-size transfers among 10,000 accounts, each with an
// idempotency key and half with a reference, durable commit included.
// ns/op is per batch; see the transfers/s metric.
//
//	go test -run '^$' -bench WriteBatch -benchtime 200x ./postgres
func BenchmarkWriteBatch(b *testing.B) {
	for _, c := range []struct {
		size  int
		audit bool
	}{{1, false}, {1, true}, {64, false}, {64, true}, {1000, false}, {1000, true}} {
		size := c.size
		b.Run(fmt.Sprintf("size=%d/audit=%v", size, c.audit), func(b *testing.B) {
			ctx := context.Background()
			db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewDatabase(b), MaxConns: 4})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			l, err := db.CreateLedger(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			const n = 10_000
			for i := 0; i < n; i += 1000 {
				var nas []ledgerd.NewAccount
				for j := i; j < i+1000; j++ {
					nas = append(nas, ledgerd.NewAccount{ID: fmt.Sprintf("acct:%06d", j), Asset: "USD"}) // MinBalance nil: unbounded
				}
				if _, err := db.CreateAccounts(ctx, l.ID, nas); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, uint64(size)))
			seq := 0
			cache := postgres.NewAccountCache()
			b.ResetTimer()
			for b.Loop() {
				units := make([]*ledgerd.WriteUnit, size)
				for i := range units {
					seq++
					// The accounts are unbounded (no min_balance), so every
					// transfer is accepted and the full write path is measured.
					units[i] = &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{postgres.BenchTransfer(r, n, seq)}}
					if c.audit {
						// One entry per request, as the API writes it.
						units[i].Audit = &ledgerd.Audit{Actor: "3f2a9c0d1e7b4a55", RequestID: fmt.Sprintf("01JEXK4N7Q8R9S%012d", seq),
							Action: "transaction.create", Target: "/v1/ledgers/bench/transactions", Created: true, Status: 201}
					}
				}
				if err := db.WriteBatch(ctx, l.ID, units, cache); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
		})
	}
}
