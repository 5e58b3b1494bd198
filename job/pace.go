package job

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pacer makes the tail a scavenger of the database, as LEDBAT (RFC 6817)
// makes a bulk transfer one of the network: it uses the capacity the
// request path leaves and yields it as soon as the request path wants it.
// The tail's work per event is database work (a delivery row, a risk row,
// an audit hash), done by backends that no niceness of the worker's
// process reaches; on a saturated primary it took half the write path's
// throughput while keeping up. So the pacer watches the one thing every
// backend shares, the wait for the database: it times a query every
// probeEvery, keeps the least of those round trips over the last minutes
// as the database's base delay, and takes what a probe waits beyond it as
// the queueing the request path is meeting; and it times how late its own
// timer fires, the wait for a CPU on a host the worker shares with the
// request path (where its niceness makes it wait first).
//
// Neither sees a request path bound by serve's CPU: there PostgreSQL does
// not queue, and the scheduler wakes a mostly sleeping process promptly
// whatever its niceness, so the tail's backends took a third of the CPU
// serve needed. The probe's query therefore also reads what the API
// nodes' write paths hold in flight (api_load, which each node publishes
// ten times a second: transactions submitted and not yet answered,
// averaged). Clients that keep the request path saturated keep many
// transactions in flight (a closed loop of 64 clients: most of its 64;
// 8 batches of 1,000: up to 8,000), while a request path with room answers what
// arrives at once (2,000 transfers/s on this box: a handful, Little's law:
// rate × latency). Above apiTarget the tail rests too — but only while it
// is less than maxBehind behind, so that a request path busy for good
// delays the tail by at most that.
//
// While a signal exceeds its target, the tail's loops rest after each step
// for a factor times the step's duration, the factor doubling up to
// maxFactor; once it is below, the factor halves back to nothing. So with
// room to spare the tail runs at once, and under a burst it falls behind
// and catches up when the burst ends.
type pacer struct {
	probe    func(context.Context) (inflight float64, err error)
	gauge    prometheus.Gauge // the factor rests use
	inflight prometheus.Gauge // what the API nodes hold in flight
	// apiTarget is the transactions in flight past which the request path
	// is busy (0: not watched), maxBehind how far behind the tail may fall
	// while yielding to it.
	apiTarget float64
	maxBehind time.Duration

	mu        sync.Mutex
	dbFactor  float64 // from the database's queueing and the timer's lateness
	apiFactor float64 // from the API nodes' transactions in flight
	behind    map[string]time.Duration
	mins      [baseBuckets]time.Duration // least round trip per baseBucket
	bucket    int64                      // index of mins' current bucket, in baseBucket units since start
	start     time.Time
}

const (
	probeEvery  = 100 * time.Millisecond
	queueTarget = 2 * time.Millisecond
	maxFactor   = 32
	baseBucket  = 10 * time.Second
	baseBuckets = 12 // two minutes
)

// newPacer watches the database and the API nodes' load through probe.
func newPacer(probe func(context.Context) (float64, error), gauge, inflight prometheus.Gauge, apiTarget float64, maxBehind time.Duration) *pacer {
	return &pacer{probe: probe, gauge: gauge, inflight: inflight, start: time.Now(), apiTarget: apiTarget,
		maxBehind: maxBehind, behind: map[string]time.Duration{}}
}

// run probes until ctx ends.
func (p *pacer) run(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		var tick time.Time
		select {
		case <-ctx.Done():
			return
		case tick = <-t.C:
		}
		// How late the tick came: this process waiting for a CPU, which on
		// a host it shares with serve or PostgreSQL (at its niceness) is
		// the request path using them.
		at := time.Now()
		late := at.Sub(tick)
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		inflight, err := p.probe(pctx)
		rtt := time.Since(at)
		cancel()
		if err != nil && ctx.Err() == nil {
			rtt = time.Second // a database that does not answer is busy
		}
		p.inflight.Set(inflight)
		p.observe(at, rtt, late, inflight)
		p.gauge.Set(p.factor())
	}
}

// observe takes one probe's round trip, how late its tick came and what
// the API nodes hold in flight.
func (p *pacer) observe(at time.Time, rtt, late time.Duration, inflight float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := int64(at.Sub(p.start) / baseBucket)
	for ; p.bucket < b; p.bucket++ {
		p.mins[(p.bucket+1)%baseBuckets] = 0
	}
	if m := &p.mins[b%baseBuckets]; *m == 0 || rtt < *m {
		*m = rtt
	}
	base := rtt
	for _, m := range p.mins {
		if m > 0 && m < base {
			base = m
		}
	}
	p.dbFactor = next(p.dbFactor, rtt-base > queueTarget || late > queueTarget)
	p.apiFactor = next(p.apiFactor, p.apiTarget > 0 && inflight > p.apiTarget)
}

// next doubles a factor while its signal says busy, up to maxFactor, and
// halves it back to nothing once it says room.
func next(f float64, busy bool) float64 {
	if busy {
		return min(max(2*f, 1), maxFactor)
	}
	if f /= 2; f < 0.25 {
		return 0
	}
	return f
}

// fellBehind records how far behind one of the tail's consumers is (the
// age of the oldest event it has not handled).
func (p *pacer) fellBehind(consumer string, d time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.behind[consumer] = d
	p.mu.Unlock()
}

// factor is the rest a step gets, as a multiple of its duration: the
// database's, and the request path's while no consumer is maxBehind
// behind.
func (p *pacer) factor() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.behind {
		if d >= p.maxBehind {
			return p.dbFactor
		}
	}
	return max(p.dbFactor, p.apiFactor)
}

// rest waits after a step of the tail that took worked, for as long as
// the database's queueing and the request path's load ask (not at all
// when they leave room).
//
// A nil pacer never rests (a store without a database to watch).
func (p *pacer) rest(ctx context.Context, worked time.Duration) {
	if p == nil {
		return
	}
	if d := time.Duration(p.factor() * float64(worked)); d > 0 {
		sleep(ctx, min(d, 2*time.Second))
	}
}
