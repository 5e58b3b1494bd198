package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// BenchmarkChainAudit measures the chainer's database side: a step that
// chains 1,000 committed entries of one ledger (reading them, hashing,
// recording the hashes, moving the head). ns/op is per step; see
// ns/entry.
//
//	go test -run '^$' -bench ChainAudit -benchtime 50x ./postgres
func BenchmarkChainAudit(b *testing.B) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.DirectURL(b, ledgertest.NewDatabase(b)), MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l, err := db.CreateLedger(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	const step = 1000
	var chaining time.Duration
	for range b.N {
		// The entries a thousand requests leave, written as the commit
		// pipeline writes them (one statement), outside the timing.
		if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target)
			SELECT $1, clock_timestamp(), 201, 'k_0123456789abcdef', 'req-' || g, 'transaction.create',
				'/v1/ledgers/bench/transactions/' || gen_random_uuid() FROM generate_series(1, $2) g`, l.ID, step); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n, err := db.ChainAudit(ctx, step)
		chaining += time.Since(start)
		if err != nil || n != step {
			b.Fatalf("chained %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(chaining.Nanoseconds())/float64(b.N*step), "ns/entry")
}
