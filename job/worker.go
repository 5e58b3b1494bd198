package job

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/audit"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Config tunes a worker. Zero values take the defaults.
type Config struct {
	// Concurrency bounds the delivery attempts this worker makes at once
	// (goroutines, never one per pending delivery). Default 128.
	Concurrency int
	// PerEndpoint bounds this worker's attempts in flight to one endpoint,
	// so that a hanging endpoint cannot take every slot (it takes a quarter
	// of them by default). Default 32: it bounds one endpoint's throughput
	// to about 32 ÷ its response time, 320/s at 100 ms.
	PerEndpoint int
	// Timeout bounds an attempt (default webhook.DefaultTimeout, 15 s).
	Timeout time.Duration
	// Schedule is the retry schedule (default webhook.DefaultSchedule).
	Schedule webhook.Schedule
	// AllowPrivate lets deliveries reach non-public addresses.
	AllowPrivate bool
	// Poll is how often an idle worker looks for new events and due
	// deliveries. Default 50 ms: it bounds how long a new event waits
	// before the relay reads it (a relay step that queues deliveries
	// wakes the delivery loop at once), and an idle worker's two queries
	// per poll cost little (docs/design/tail.md).
	Poll time.Duration
	// RelayBatch is how many events one relay step reads. Default 500.
	RelayBatch int
	// Retention is how long delivered rows stay in the delivery log.
	// Default 7 days.
	Retention time.Duration
	// ShutdownGrace is how long attempts in flight may go on after the
	// worker is told to stop; then they are cut short and their deliveries
	// released. Default 5 s.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// Email is the SMTP side of balance monitors (job/email.go).
	Email EmailConfig
	// Keep is the retention of the side tables (job/retention.go).
	Keep RetentionConfig
	// Maintenance is index maintenance (job/maintenance.go).
	Maintenance MaintenanceConfig
	// Tracer, when set, records delivery spans in the traces of the
	// sampled requests that caused them (job/trace.go).
	Tracer trace.Tracer
	// Archive is the periodic archival of old months (job/archive.go).
	Archive ArchiveConfig
	// YieldInFlight is how many transactions the API nodes' write paths
	// may hold in flight before the tail rests, leaving the machine to
	// them (pace.go); 0 or less: their load is not watched.
	YieldInFlight float64
	// YieldMaxLag bounds how far behind the tail falls while yielding to
	// the request path. Default 5 minutes.
	YieldMaxLag time.Duration
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 128
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = 32
	}
	if c.Timeout <= 0 {
		c.Timeout = webhook.DefaultTimeout
	}
	if c.Schedule == nil {
		c.Schedule = webhook.DefaultSchedule
	}
	if c.Poll <= 0 {
		c.Poll = 50 * time.Millisecond
	}
	if c.RelayBatch <= 0 {
		c.RelayBatch = 500
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.YieldMaxLag <= 0 {
		c.YieldMaxLag = 5 * time.Minute
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Worker runs the asynchronous tail: relay, deliveries, audit chaining.
type Worker struct {
	store  Store
	events EventReader
	cfg    Config
	client *http.Client
	m      *metrics
	log    *slog.Logger
	// relayed wakes the delivery loop when a relay step has queued
	// deliveries, so that a new event waits for a claim rather than for
	// the next poll.
	relayed chan struct{}
	mon     *monitorTail // nil: the store evaluates no monitors

	// Attempts run under actx: on shutdown they get ShutdownGrace to
	// finish before being cut short. Their outcomes go to results, which
	// completeLoop writes in batches; inflight counts the attempts (and
	// hand-overs) whose outcome has not reached results yet.
	actx           context.Context
	cancelAttempts context.CancelFunc
	results        chan ledgerd.DeliveryResult
	inflight       sync.WaitGroup
	// opened holds the relay step's first attempts that outlived it,
	// until the step commits (relay.go).
	opened map[openKey]chan webhook.Outcome
	// pace makes the loops yield the database to the request path
	// (pace.go); nil for a store that cannot be pinged.
	pace *pacer
}

// New returns a worker over store reading events through events.
func New(store Store, events EventReader, cfg Config) *Worker {
	cfg.defaults()
	mon, err := newMonitorTail(store, &cfg)
	if err != nil {
		cfg.Logger.Error("e-mail is off", "err", err)
	}
	return &Worker{store: store, events: events, cfg: cfg, m: newMetrics(cfg.Registerer), log: cfg.Logger, mon: mon,
		relayed: make(chan struct{}, 1),
		client: webhook.NewClient(webhook.ClientOptions{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.Timeout,
			IdlePerHost: cfg.PerEndpoint})}
}

// claimed is a delivery claimed and waiting for a slot, since at.
type claimed struct {
	t  ledgerd.DeliveryTask
	at time.Time
}

// fastAttempt is how quick a 2xx must come for its endpoint to be claimed
// further ahead: up to Concurrency deliveries queued behind its
// PerEndpoint in flight instead of PerEndpoint. Every claim walks the due
// index over the entries that completed deliveries left behind since the
// last vacuum, so its cost grows with a backlog being drained; claiming
// more at a time for an endpoint that keeps up cut PostgreSQL's CPU per
// delivery by half to two thirds in BenchmarkDrain. A slow endpoint keeps
// the smaller queue, so that it holds few of the worker's claims.
const fastAttempt = 100 * time.Millisecond

// claimGather is how long a worker with due work waits after a slot
// frees up before claiming again, to claim for several slots at once.
const claimGather = 2 * time.Millisecond

// lease is how long a claimed delivery stays ours: twice the attempt's
// timeout and a margin for writing its outcome (a worker that cannot write
// it within that is as good as dead). A worker that dies holding it makes
// the delivery due again when it runs out, so it bounds how late a
// delivery is after a kill -9.
func (w *Worker) lease() time.Duration { return 2*w.cfg.Timeout + 5*time.Second }

// Run runs the worker until ctx ends, then stops claiming, lets attempts
// in flight finish for up to ShutdownGrace, releases the rest and writes
// every outcome before returning.
func (w *Worker) Run(ctx context.Context) error {
	w.actx, w.cancelAttempts = context.WithCancel(context.Background())
	defer w.cancelAttempts()
	w.results = make(chan ledgerd.DeliveryResult, w.cfg.Concurrency)
	completed := make(chan struct{})
	go func() { w.completeLoop(w.results); close(completed) }()
	var wg sync.WaitGroup
	if pg, ok := w.store.(interface {
		APILoad(context.Context) (float64, error)
	}); ok {
		w.pace = newPacer(pg.APILoad, w.m.pace, w.m.apiInFlight, w.cfg.YieldInFlight, w.cfg.YieldMaxLag)
		wg.Go(func() { w.pace.run(ctx) })
	}
	wg.Add(3)
	if as, ok := w.store.(audit.Store); ok {
		// Audit chaining: every worker runs it; chainers share the
		// ledgers (docs/audit.md).
		wg.Add(1)
		go func() { defer wg.Done(); audit.Run(ctx, as, w.cfg.Poll, w.log.With("component", "audit"), w.pace.rest) }()
	}
	go func() { defer wg.Done(); w.relayLoop(ctx) }()
	go func() { defer wg.Done(); w.sampleLoop(ctx) }()
	go func() { defer wg.Done(); w.retentionLoop(ctx) }()
	wg.Go(func() { w.archiveLoop(ctx) })
	if w.mon != nil {
		w.mon.pace = w.pace
		wg.Go(func() { w.mon.run(ctx) })
	}
	wg.Go(func() { w.runFraud(ctx) })
	wg.Go(func() { w.maintainLoop(ctx) })
	w.deliverLoop(ctx)
	wg.Wait()
	// Neither loop starts attempts any more: let those in flight finish,
	// for a while.
	stopped := make(chan struct{})
	go func() { w.inflight.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(w.cfg.ShutdownGrace):
		w.cancelAttempts()
		<-stopped
	}
	close(w.results)
	<-completed
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// deliverLoop claims due deliveries and runs their attempts in a bounded
// set of goroutines; outcomes are written back in batches.
//
// It claims ahead: up to PerEndpoint deliveries per endpoint (Concurrency
// for an endpoint answering within fastAttempt) wait in a local queue
// behind the PerEndpoint in flight, so that a claim brings
// work for many completions rather than one (a claim per completion made
// the database round trip the limit of an endpoint's throughput). The
// queue is bounded (at most 2 × Concurrency claimed in all), and its
// deliveries are leased like the others: the lease, twice the timeout
// and 5 s, covers a wait of up to one timeout and then the attempt; one
// that waited longer (a fast endpoint turned slow behind a long queue) is
// handed back unattempted.
func (w *Worker) deliverLoop(ctx context.Context) {
	results, inflight := w.results, &w.inflight
	wake := make(chan struct{}, 1)
	var (
		mu      sync.Mutex
		busy    = map[string]int{} // attempts in flight per endpoint
		running int                // attempts in flight in all
		queue   = map[string][]claimed{}
		queued  int
		// fastUntil marks the endpoints that answered 2xx within
		// fastAttempt lately: they may be claimed further ahead.
		fastUntil = map[string]time.Time{}
	)
	// ahead is how many deliveries of endpoint ep this worker may hold
	// (in flight and queued). Called with mu held.
	ahead := func(ep string, now time.Time) int {
		if u, ok := fastUntil[ep]; ok {
			if now.Before(u) {
				return w.cfg.PerEndpoint + w.cfg.Concurrency
			}
			delete(fastUntil, ep)
		}
		return 2 * w.cfg.PerEndpoint
	}
	// dispatch starts queued attempts while their endpoint and the worker
	// have room. Called with mu held.
	var dispatch func()
	dispatch = func() {
		for ep, q := range queue {
			for len(q) > 0 && busy[ep] < w.cfg.PerEndpoint && running < w.cfg.Concurrency {
				c := q[0]
				q = q[1:]
				queued--
				if time.Since(c.at) > w.cfg.Timeout {
					// Waited so long behind slow attempts that its lease
					// might run out during its own: hand it back rather
					// than risk two workers attempting it at once.
					inflight.Add(1)
					go func() {
						defer inflight.Done()
						results <- ledgerd.DeliveryResult{ID: c.t.ID, Attempts: c.t.Attempts, Status: ledgerd.DeliveryPending,
							NextAttemptAt: time.Now(), Release: true}
					}()
					continue
				}
				t := c.t
				busy[ep]++
				running++
				inflight.Add(1)
				w.m.inFlight.Inc()
				go func() {
					start := time.Now()
					r := w.attempt(w.actx, &t)
					results <- r
					mu.Lock()
					if now := time.Now(); r.Status == ledgerd.DeliveryDelivered && now.Sub(start) < fastAttempt {
						fastUntil[ep] = now.Add(time.Second)
					}
					if busy[ep]--; busy[ep] <= 0 {
						delete(busy, ep)
					}
					running--
					dispatch()
					mu.Unlock()
					w.m.inFlight.Dec()
					inflight.Done()
					select {
					case wake <- struct{}{}:
					default:
					}
				}()
			}
			if len(q) == 0 {
				delete(queue, ep)
			} else {
				queue[ep] = q
			}
		}
	}

	for ctx.Err() == nil {
		mu.Lock()
		want := w.cfg.Concurrency + w.cfg.Concurrency - running - queued
		room := make(map[string]int, len(busy)+len(queue)+len(fastUntil))
		now := time.Now()
		for id := range fastUntil {
			room[id] = ahead(id, now)
		}
		for id, k := range busy {
			room[id] = ahead(id, now) - k
		}
		for id, q := range queue {
			room[id] = ahead(id, now) - busy[id] - len(q)
		}
		mu.Unlock()
		var tasks []ledgerd.DeliveryTask
		if want > 0 {
			var err error
			tasks, err = w.store.ClaimDeliveries(ctx, want, 2*w.cfg.PerEndpoint, room, w.lease())
			if err != nil && ctx.Err() == nil {
				w.log.Error("claim deliveries", "err", err)
			}
			mu.Lock()
			at := time.Now()
			for _, t := range tasks {
				queue[t.Endpoint.ID] = append(queue[t.Endpoint.ID], claimed{t, at})
			}
			queued += len(tasks)
			dispatch()
			mu.Unlock()
		}
		t := time.NewTimer(w.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.relayed:
		case <-wake:
			if len(tasks) == 0 {
				// Nothing was due: a freed slot is no reason to look
				// again before the poll or the relay's next step.
				select {
				case <-ctx.Done():
				case <-t.C:
				case <-w.relayed:
				}
			} else {
				// Work was found and there may be more: claim again as
				// attempts complete, a few completions at a time rather
				// than one query per completion.
				sleep(ctx, claimGather)
			}
		}
		t.Stop()
	}
	// Deliveries claimed but not started go back at once.
	mu.Lock()
	var back []ledgerd.DeliveryResult
	for ep, q := range queue {
		for _, c := range q {
			back = append(back, ledgerd.DeliveryResult{ID: c.t.ID, Attempts: c.t.Attempts, Status: ledgerd.DeliveryPending,
				NextAttemptAt: time.Now(), Release: true})
		}
		delete(queue, ep)
	}
	queued = 0
	mu.Unlock()
	for _, r := range back {
		results <- r // completeLoop drains results meanwhile
	}
}

// attempt makes one attempt and decides what becomes of the delivery.
func (w *Worker) attempt(ctx context.Context, t *ledgerd.DeliveryTask) ledgerd.DeliveryResult {
	return w.settle(ctx, t, w.deliver(ctx, t))
}

// deliver makes one attempt.
func (w *Worker) deliver(ctx context.Context, t *ledgerd.DeliveryTask) webhook.Outcome {
	keys, err := webhook.ParseKeys(t.Endpoint.Secrets(time.Now())...)
	if err != nil {
		return webhook.Outcome{Err: "endpoint secret unusable"}
	}
	return w.tracedDeliver(ctx, t, webhook.Endpoint{URL: t.Endpoint.URL, Keys: keys})
}

// settle decides what becomes of a delivery after an attempt made under
// ctx; a 410 disables the endpoint on the spot.
func (w *Worker) settle(ctx context.Context, t *ledgerd.DeliveryTask, out webhook.Outcome) ledgerd.DeliveryResult {
	r := ledgerd.DeliveryResult{ID: t.ID, Attempts: t.Attempts}
	r.StatusCode, r.Err = out.StatusCode, out.Err
	now := time.Now()
	outcome := "retry"
	switch {
	case out.Result == webhook.Delivered:
		r.Status, r.NextAttemptAt = ledgerd.DeliveryDelivered, now
		outcome = "delivered"
		w.m.latency.Observe(now.Sub(t.Event.CreatedAt).Seconds())
		w.m.deliveredCnt.Inc()
	case out.Result == webhook.Gone:
		r.Status, r.NextAttemptAt = ledgerd.DeliveryFailed, now
		outcome = "gone"
		w.m.deadLetters.Inc()
		if err := w.store.DisableGoneEndpoint(context.Background(), t.Endpoint.ID, t.ID, t.Attempts); err != nil {
			// The delivery stays pending with its lease; the next attempt
			// meets the 410 again and tries once more.
			w.log.Error("disable endpoint after 410", "endpoint", t.Endpoint.ID, "err", err)
			r.Status, r.NextAttemptAt = ledgerd.DeliveryPending, now.Add(w.cfg.Poll)
		}
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		r.Status, r.NextAttemptAt, r.Release = ledgerd.DeliveryPending, now, true
		outcome = "released"
	default:
		if next, ok := w.cfg.Schedule.Next(t.Attempts, now, nil); ok {
			r.Status, r.NextAttemptAt = ledgerd.DeliveryPending, next
		} else {
			r.Status, r.NextAttemptAt = ledgerd.DeliveryFailed, now
			outcome = "dead_letter"
			w.m.deadLetters.Inc()
		}
	}
	w.m.attempts.WithLabelValues(outcome).Inc()
	w.m.duration.WithLabelValues(outcome).Observe(out.Duration.Seconds())
	return r
}

// completeLoop writes outcomes in batches: whatever has arrived within a
// few milliseconds of the first, up to a few hundred, in one statement.
func (w *Worker) completeLoop(results <-chan ledgerd.DeliveryResult) {
	const maxBatch = 256
	batch := make([]ledgerd.DeliveryResult, 0, maxBatch)
	for r := range results {
		batch = append(batch[:0], r)
		deadline := time.NewTimer(10 * time.Millisecond)
	gather:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-results:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			case <-deadline.C:
				break gather
			}
		}
		deadline.Stop()
		w.complete(batch)
	}
}

// complete writes a batch of outcomes, retrying a little while the
// database is unreachable. An outcome that cannot be written is not lost:
// its lease runs out and the delivery is attempted again.
func (w *Worker) complete(batch []ledgerd.DeliveryResult) {
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.store.CompleteDeliveries(ctx, batch)
		cancel()
		if err == nil {
			return
		}
		w.log.Error("write delivery outcomes", "n", len(batch), "try", i+1, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// sampleLoop samples the backlog for the gauges.
func (w *Worker) sampleLoop(ctx context.Context) {
	for ctx.Err() == nil {
		s, err := w.store.TailStats(ctx, postgres.WebhookConsumer)
		if err == nil {
			w.m.lagEvents.WithLabelValues(postgres.WebhookConsumer).Set(float64(s.LagEvents))
			w.m.lagSeconds.WithLabelValues(postgres.WebhookConsumer).Set(s.LagSeconds)
			w.pace.fellBehind(postgres.WebhookConsumer, time.Duration(s.LagSeconds*float64(time.Second)))
			w.m.deliveries.WithLabelValues(ledgerd.DeliveryPending).Set(float64(s.Pending))
			w.m.deliveries.WithLabelValues(ledgerd.DeliveryFailed).Set(float64(s.Failed))
			w.m.disabled.Set(float64(s.DisabledEndpoints))
		} else if ctx.Err() == nil {
			w.log.Warn("sample tail stats", "err", err)
		}
		sleep(ctx, 5*time.Second)
	}
}
