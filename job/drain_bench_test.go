package job_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// BenchmarkDrain measures one worker's delivery rate: b.N due deliveries
// of one endpoint, already in the table (as a relay would have left them
// after an outage), drained to a receiver on loopback that answers 200 at
// once. What it measures is the worker and the database: claims, outcome
// writes, rendering and signing, the HTTP client.
//
//	go test -run '^$' -bench Drain -benchtime 50000x -cpuprofile cpu.out ./job/
func BenchmarkDrain(b *testing.B) {
	e := ledgertest.Start(b, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(b, e, "drain")
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
	if _, err := conn.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at, data)
		SELECT $1, 'evt_drain_' || i, e.ledger_id, i, 0, 'transaction.created', clock_timestamp(),
			json_build_object('id', 'tx_' || i, 'postings', json_build_array(json_build_object('source', 'world', 'destination', 'a', 'amount', i, 'asset', 'USD')))
		FROM webhook_endpoints e, generate_series(1, $2::int) i WHERE e.id = $1`, epID, b.N); err != nil {
		b.Fatal(err)
	}
	// ANALYZE but no VACUUM: a backlog drained live has none either, and
	// the dead entries that completed deliveries leave in the due index
	// are part of what a claim costs.
	if _, err := conn.Exec(ctx, `ANALYZE webhook_deliveries`); err != nil {
		b.Fatal(err)
	}
	measureDelivery(b, e, conn, &got)
}

// measureDelivery starts a worker and times it delivering b.N events to
// the receiver that counts them in got, reporting deliveries/s and the CPU
// per 1,000 deliveries of this process (worker, receiver, the harness's
// API server, idle) and of the PostgreSQL cluster conn belongs to.
func measureDelivery(b *testing.B, e *ledgertest.Env, conn *pgx.Conn, got *atomic.Int64) {
	b.Helper()
	var backend int
	if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
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

// clockTicks is USER_HZ, 100 on every Linux the tests run on.
const clockTicks = 100

// procStat returns the fields of /proc/PID/stat after the command: state,
// ppid, ... (so utime is [11], stime [12]).
func procStat(b *testing.B, pid int) []int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	out := make([]int64, len(f))
	for i, v := range f {
		out[i], _ = strconv.ParseInt(v, 10, 64)
	}
	return out
}

func cpuTicks(b *testing.B, pid int) int64 {
	f := procStat(b, pid)
	return f[11] + f[12]
}

// pgTicks is the CPU of a postmaster and its children now alive.
func pgTicks(b *testing.B, postmaster int64) int64 {
	t := cpuTicks(b, int(postmaster))
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 && f[1] == strconv.FormatInt(postmaster, 10) && pid != int(postmaster) {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			t += u + st
		}
	}
	return t
}

// BenchmarkIdle measures what an idle worker costs (one ledger, one
// endpoint, nothing to deliver), per second of idling, at the default
// poll: b.N is the number of seconds.
//
//	go test -run '^$' -bench Idle -benchtime 10x ./job/
func BenchmarkIdle(b *testing.B) {
	e := ledgertest.Start(b, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(b, e, "idle")
	endpoint(b, e, l, "http://127.0.0.1:9/hook")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(b, e.DatabaseURL))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	postmaster := procStat(b, backend)[1]
	startWorker(b, e, job.Config{Poll: -1}) // the default, not the tests' 50 ms
	time.Sleep(time.Second)
	b.ResetTimer()
	self0, pg0 := cpuTicks(b, os.Getpid()), pgTicks(b, postmaster)
	time.Sleep(time.Duration(b.N) * time.Second)
	b.StopTimer()
	b.ReportMetric(float64(cpuTicks(b, os.Getpid())-self0)*1000/clockTicks/float64(b.N), "worker-cpu-ms/s")
	b.ReportMetric(float64(pgTicks(b, postmaster)-pg0)*1000/clockTicks/float64(b.N), "pg-cpu-ms/s")
}
