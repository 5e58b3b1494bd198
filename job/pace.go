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
// backend shares, the wait for the database: it times an empty query every
// probeEvery, keeps the least of those round trips over the last minutes
// as the database's base delay, and takes what a probe waits beyond it as
// the queueing the request path is meeting; and it times how late its own
// timer fires, the wait for a CPU on a host the worker shares with the
// request path (where its niceness makes it wait first). While either
// exceeds queueTarget, the tail's loops rest after each step for factor
// times the step's duration, factor doubling up to maxFactor; once both
// are below, it halves back to nothing. So with room to spare (2,000 transfers/s on this box)
// the tail runs at once, and under a burst it falls behind and catches up
// when the burst ends.
type pacer struct {
	ping  func(context.Context) error
	gauge prometheus.Gauge

	mu     sync.Mutex
	factor float64
	mins   [baseBuckets]time.Duration // least round trip per baseBucket
	bucket int64                      // index of mins' current bucket, in baseBucket units since start
	start  time.Time
}

const (
	probeEvery  = 100 * time.Millisecond
	queueTarget = 2 * time.Millisecond
	maxFactor   = 32
	baseBucket  = 10 * time.Second
	baseBuckets = 12 // two minutes
)

func newPacer(ping func(context.Context) error, gauge prometheus.Gauge) *pacer {
	return &pacer{ping: ping, gauge: gauge, start: time.Now()}
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
		err := p.ping(pctx)
		rtt := time.Since(at)
		cancel()
		if err != nil && ctx.Err() == nil {
			rtt = time.Second // a database that does not answer is busy
		}
		p.gauge.Set(p.observe(at, rtt, late))
	}
}

// observe takes one probe's round trip and how late its tick came, and
// returns the new factor.
func (p *pacer) observe(at time.Time, rtt, late time.Duration) float64 {
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
	if rtt-base > queueTarget || late > queueTarget {
		p.factor = min(max(2*p.factor, 1), maxFactor)
	} else if p.factor /= 2; p.factor < 0.25 {
		p.factor = 0
	}
	return p.factor
}

// rest waits after a step of the tail that took worked, for as long as
// the database's queueing asks (not at all when it has room).
//
// A nil pacer never rests (a store without a database to watch).
func (p *pacer) rest(ctx context.Context, worked time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	f := p.factor
	p.mu.Unlock()
	if d := time.Duration(f * float64(worked)); d > 0 {
		sleep(ctx, min(d, 2*time.Second))
	}
}
