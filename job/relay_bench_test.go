package job_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// BenchmarkRelay measures one worker delivering b.N transactions already
// in the log to one endpoint on loopback that answers 200 at once, from
// the relay's first read to the last arrival, and what it costs the worker
// and PostgreSQL per 1,000 deliveries:
//
//   - first: the endpoint is healthy, so the relay attempts each delivery
//     itself and records it once with its outcome;
//
//   - queued: the endpoint has a delivery pending (due in a day), so every
//     new delivery is queued, claimed and completed (the path of a failing
//     endpoint, and the only path before first attempts).
//
//     go test -run '^$' -bench Relay -benchtime 20000x ./job/
func BenchmarkRelay(b *testing.B) {
	for _, mode := range []string{"first", "queued"} {
		b.Run(mode, func(b *testing.B) { benchRelay(b, mode == "queued") })
	}
}

func benchRelay(b *testing.B, queued bool) {
	e := ledgertest.Start(b, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(b, e, "relay")
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	b.Cleanup(srv.Close)
	epID, _ := endpoint(b, e, l, srv.URL+"/hook")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(b, e.DatabaseURL))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if queued {
		if _, err := conn.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type,
				event_created_at, data, next_attempt_at)
			SELECT $1, 'evt_blocker', ledger_id, 0, 0, 'transaction.posted', clock_timestamp(), '{}', clock_timestamp() + interval '1 day'
			FROM webhook_endpoints WHERE id = $1`, epID); err != nil {
			b.Fatal(err)
		}
	}
	for left := b.N; left > 0; {
		k := min(left, 1000)
		items := make([]map[string]any, k)
		for i := range items {
			items[i] = map[string]any{"postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}}}
		}
		e.Do("POST", "/v1/ledgers/"+l+"/transactions/batch", admin, map[string]any{"transactions": items}).Expect(b, 200)
		left -= k
	}
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	postmaster := procStat(b, backend)[1]
	b.ResetTimer()
	self0, pg0 := cpuTicks(b, os.Getpid()), pgTicks(b, postmaster)
	start := time.Now()
	startWorker(b, e, job.Config{})
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	if n := got.Load(); n < int64(b.N) {
		b.Fatalf("delivered %d of %d in 5 minutes", n, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpuTicks(b, os.Getpid())-self0)*1000/clockTicks*1000/float64(b.N), "worker-cpu-ms/1k")
	b.ReportMetric(float64(pgTicks(b, postmaster)-pg0)*1000/clockTicks*1000/float64(b.N), "pg-cpu-ms/1k")
}
