package postgres

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd"
)

// BenchmarkPrepareFast measures the fast path's in-memory step for a batch
// of 1,000 transfers among 10,000 cached accounts, each with a key and
// half with a reference: what the ledger's writer does between gathering
// a batch and sending it. ns/op is per batch.
//
//	go test -run '^$' -bench PrepareFast -benchmem ./postgres
func BenchmarkPrepareFast(b *testing.B) {
	const n, size = 10_000, 1000
	cache := NewAccountCache()
	for i := range n {
		cache.accounts[fmt.Sprintf("acct:%06d", i)] = ledgerd.BookAccount{Asset: "USD", Balance: ledgerd.Balance{Posted: 1_000_000}}
	}
	cache.valid = true
	db := &DB{}
	r := rand.New(rand.NewPCG(1, 2))
	seq := 0
	batches := make([][]*ledgerd.WriteUnit, 8)
	for k := range batches {
		u := &ledgerd.WriteUnit{}
		for range size {
			seq++
			u.Items = append(u.Items, BenchTransfer(r, n, seq))
		}
		batches[k] = []*ledgerd.WriteUnit{u}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if db.PrepareFast(1, batches[i%len(batches)], cache) == nil {
			b.Fatal("not eligible")
		}
		i++
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
}
