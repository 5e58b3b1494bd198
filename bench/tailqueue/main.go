// Command tailqueue is a throwaway benchmark behind docs/design/tail.md:
// River v0.51.1 against a small table queue claimed with FOR UPDATE SKIP
// LOCKED, as the webhook delivery queue of the tail. It is its own module so
// that River does not become a dependency of ledgerd. Run: go run . -mode river|table
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledgerd/ledgerd/pgcluster"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type DeliverArgs struct {
	EventSeq   int64 `json:"s"`
	EndpointID int64 `json:"e"`
	Enq        int64 `json:"t"` // unix nanos at enqueue
}

func (DeliverArgs) Kind() string { return "webhook_delivery" }

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	rec *recorder
}

func (w *deliverWorker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	w.rec.done(j.Args.Enq)
	return nil
}

type recorder struct {
	mu   sync.Mutex
	lags []time.Duration
	n    atomic.Int64
}

func (r *recorder) done(enq int64) {
	lag := time.Since(time.Unix(0, enq))
	r.mu.Lock()
	r.lags = append(r.lags, lag)
	r.mu.Unlock()
	r.n.Add(1)
}

func (r *recorder) report(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lags) == 0 {
		fmt.Printf("%s: no jobs\n", name)
		return
	}
	slices.Sort(r.lags)
	q := func(p float64) time.Duration { return r.lags[int(p*float64(len(r.lags)-1))] }
	fmt.Printf("%s: %d jobs, lag p50 %v p99 %v max %v\n", name, len(r.lags), q(.5).Round(time.Millisecond), q(.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
	r.lags = r.lags[:0]
}

// cpu returns user+system CPU of this process and of every postgres
// process (postmaster's children), in clock ticks → duration.
func cpu(pgPID int) (self, pg time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		if pid != pgPID && ppid != pgPID {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		pg += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return
}

var (
	mode    = flag.String("mode", "river", "river | table")
	drainN  = flag.Int("drain", 50000, "jobs enqueued up front, then drained")
	rate    = flag.Int("rate", 2000, "steady jobs/s")
	steadyD = flag.Duration("steady", 15*time.Second, "steady phase")
	workers = flag.Int("workers", 100, "concurrent jobs")
	chunk   = flag.Int("chunk", 200, "jobs per enqueue (one relay step)")
)

func main() {
	flag.Parse()
	ctx := context.Background()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Stop()
	if err := cl.CreateDatabase(ctx, "b", ""); err != nil {
		log.Fatal(err)
	}
	cfg, _ := pgxpool.ParseConfig(cl.URL("b"))
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	rec := &recorder{}
	var enqueue func(ctx context.Context, jobs []DeliverArgs) error
	var stop func()
	switch *mode {
	case "river":
		enqueue, stop = setupRiver(ctx, pool, rec)
	case "table":
		enqueue, stop = setupTable(ctx, pool, rec)
	}
	seq := int64(0)
	mk := func(n int) []DeliverArgs {
		out := make([]DeliverArgs, n)
		now := time.Now().UnixNano()
		for i := range out {
			seq++
			out[i] = DeliverArgs{EventSeq: seq, EndpointID: 1, Enq: now}
		}
		return out
	}

	// Phase 1: steady rate, chunked as a relay would enqueue after each commit.
	s0, p0 := cpu(cl.PID())
	start := time.Now()
	tick := time.NewTicker(time.Second * time.Duration(*chunk) / time.Duration(*rate))
	sent := 0
	for time.Since(start) < *steadyD {
		<-tick.C
		if err := enqueue(ctx, mk(*chunk)); err != nil {
			log.Fatal(err)
		}
		sent += *chunk
	}
	tick.Stop()
	for rec.n.Load() < int64(sent) {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	s1, p1 := cpu(cl.PID())
	fmt.Printf("[%s] steady %d/s for %v: bench process CPU %.0f ms/1k jobs, postgres CPU %.0f ms/1k jobs\n", *mode, *rate, el.Round(time.Millisecond),
		float64((s1-s0).Milliseconds())*1000/float64(sent), float64((p1-p0).Milliseconds())*1000/float64(sent))
	rec.report(fmt.Sprintf("[%s] steady", *mode))

	// Phase 2: a backlog (a receiver back after an outage): enqueue, then drain.
	rec.n.Store(0)
	t0 := time.Now()
	for i := 0; i < *drainN; i += 1000 {
		if err := enqueue(ctx, mk(1000)); err != nil {
			log.Fatal(err)
		}
	}
	enqEl := time.Since(t0)
	for rec.n.Load() < int64(*drainN) {
		time.Sleep(5 * time.Millisecond)
	}
	el = time.Since(t0)
	s2, p2 := cpu(cl.PID())
	fmt.Printf("[%s] backlog %d: enqueued in %v (%.0f/s), all done in %v (%.0f jobs/s); bench CPU %.0f ms/1k, postgres CPU %.0f ms/1k\n", *mode, *drainN,
		enqEl.Round(time.Millisecond), float64(*drainN)/enqEl.Seconds(), el.Round(time.Millisecond), float64(*drainN)/el.Seconds(),
		float64((s2-s1).Milliseconds())*1000/float64(*drainN), float64((p2-p1).Milliseconds())*1000/float64(*drainN))
	rec.lags = rec.lags[:0]
	stop()
	var rows int64
	_ = pool.QueryRow(ctx, `SELECT pg_total_relation_size(c.oid) FROM pg_class c WHERE relname = $1`, map[string]string{"river": "river_job", "table": "deliveries"}[*mode]).Scan(&rows)
	fmt.Printf("[%s] queue table size after %d jobs: %d kB\n", *mode, sent+*drainN, rows/1024)
}

func setupRiver(ctx context.Context, pool *pgxpool.Pool, rec *recorder) (func(context.Context, []DeliverArgs) error, func()) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		log.Fatal(err)
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, &deliverWorker{rec: rec})
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:       ws,
		FetchCooldown: 10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	enq := func(ctx context.Context, jobs []DeliverArgs) error {
		ps := make([]river.InsertManyParams, len(jobs))
		for i, j := range jobs {
			ps[i] = river.InsertManyParams{Args: j}
		}
		_, err := c.InsertManyFast(ctx, ps)
		return err
	}
	return enq, func() { _ = c.Stop(ctx) }
}

const tableDDL = `
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     bigint NOT NULL,
    event_seq       bigint NOT NULL,
    state           smallint NOT NULL DEFAULT 0, -- 0 pending, 1 running, 2 delivered, 3 failed
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    enq             bigint NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 0;`

func setupTable(ctx context.Context, pool *pgxpool.Pool, rec *recorder) (func(context.Context, []DeliverArgs) error, func()) {
	if _, err := pool.Exec(ctx, tableDDL); err != nil {
		log.Fatal(err)
	}
	enq := func(ctx context.Context, jobs []DeliverArgs) error {
		e, s, t := make([]int64, len(jobs)), make([]int64, len(jobs)), make([]int64, len(jobs))
		for i, j := range jobs {
			e[i], s[i], t[i] = j.EndpointID, j.EventSeq, j.Enq
		}
		_, err := pool.Exec(ctx, `INSERT INTO deliveries (endpoint_id, event_seq, enq) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])`, e, s, t)
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// A few claimers hand jobs to a bounded set of goroutines; completions
	// are written in batches, like River's BatchCompleter.
	jobs := make(chan [2]int64, *workers)
	doneCh := make(chan int64, 4096)
	const claimers = 2
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				rows, err := pool.Query(cctx, `UPDATE deliveries d SET state = 1, attempts = attempts + 1
					WHERE id IN (SELECT id FROM deliveries WHERE state = 0 AND next_attempt_at <= now()
					             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
					RETURNING id, enq`, *workers)
				if err != nil {
					if cctx.Err() == nil {
						log.Print(err)
					}
					return
				}
				got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
					var v [2]int64
					return v, r.Scan(&v[0], &v[1])
				})
				if err != nil {
					log.Print(err)
					return
				}
				if len(got) == 0 {
					time.Sleep(10 * time.Millisecond) // poll; LISTEN would shave this
					continue
				}
				for _, g := range got {
					jobs <- g
				}
			}
		}()
	}
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-cctx.Done():
					return
				case j := <-jobs:
					rec.done(j[1])
					doneCh <- j[0]
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		var ids []int64
		for {
			select {
			case <-cctx.Done():
				return
			case id := <-doneCh:
				ids = append(ids, id)
				if len(ids) < 2000 {
					continue
				}
			case <-t.C:
			}
			if len(ids) == 0 {
				continue
			}
			if _, err := pool.Exec(cctx, `UPDATE deliveries SET state = 2 WHERE id = ANY($1)`, ids); err != nil && cctx.Err() == nil {
				log.Print(err)
			}
			ids = ids[:0]
		}
	}()
	return enq, func() { cancel(); wg.Wait() }
}
