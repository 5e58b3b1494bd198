package job

import (
	"bytes"
	"context"
	"os"
	"strconv"
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
// request path (where its niceness makes it wait first).
//
// Neither sees a host whose CPUs the request path saturates: there
// PostgreSQL does not queue (serve's CPU bounds the load), and the
// scheduler wakes a mostly sleeping process promptly whatever its
// niceness, so the tail's backends took a third of the CPU serve needed.
// The kernel's CPU pressure (PSI, /proc/pressure/cpu) does see it: the
// share of time some runnable task waited for a CPU. Above cpuTarget the
// host has no CPU to spare, and the tail rests too — but only while it is
// less than maxBehind behind: a host saturated for good (or by work that
// is not ledgerd's) must not starve the tail for longer than that.
//
// While a signal exceeds its target, the tail's loops rest after each step
// for a factor times the step's duration, the factor doubling up to
// maxFactor; once it is below, the factor halves back to nothing. So with
// room to spare (2,000 transfers/s on this box) the tail runs at once, and
// under a burst it falls behind and catches up when the burst ends. The
// tail's own work counts in the CPU pressure too, so a tail draining a
// backlog alone settles where it keeps the host near cpuTarget.
type pacer struct {
	ping     func(context.Context) error
	gauge    prometheus.Gauge // the factor rests use
	pressure prometheus.Gauge // the host's CPU pressure
	// stall reads the host's cumulative CPU stall (nil: not watched);
	// cpuTarget is the share of a probe's interval past which the host
	// has no CPU to spare, maxBehind how far behind the tail may fall
	// while yielding it.
	stall     func() (time.Duration, bool)
	cpuTarget float64
	maxBehind time.Duration

	mu        sync.Mutex
	dbFactor  float64 // from the database's queueing and the timer's lateness
	cpuFactor float64 // from the host's CPU pressure
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

// newPacer watches the database through ping and, with cpuTarget > 0 on
// a host that reports CPU pressure, the host's CPUs.
func newPacer(ping func(context.Context) error, gauge, pressure prometheus.Gauge, cpuTarget float64, maxBehind time.Duration) *pacer {
	p := &pacer{ping: ping, gauge: gauge, pressure: pressure, start: time.Now(), cpuTarget: cpuTarget,
		maxBehind: maxBehind, behind: map[string]time.Duration{}}
	if _, ok := cpuStall(); ok && cpuTarget > 0 {
		p.stall = cpuStall
	}
	return p
}

// cpuStall is the time some runnable task of the host has waited for a
// CPU since boot: the "some" line's total of /proc/pressure/cpu, in µs.
func cpuStall() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if !bytes.HasPrefix(line, []byte("some ")) {
		return 0, false
	}
	_, total, ok := bytes.Cut(line, []byte(" total="))
	if !ok {
		return 0, false
	}
	us, err := strconv.ParseInt(string(bytes.TrimSpace(total)), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

// run probes until ctx ends.
func (p *pacer) run(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	var stalled time.Duration
	var since time.Time
	if p.stall != nil {
		stalled, _ = p.stall()
		since = time.Now()
	}
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
		// The share of the interval since the last probe in which some
		// task waited for a CPU.
		pressure := 0.0
		if p.stall != nil {
			if s, ok := p.stall(); ok && at.After(since) {
				pressure = float64(s-stalled) / float64(at.Sub(since))
				stalled, since = s, at
			}
			p.pressure.Set(pressure)
		}
		p.observe(at, rtt, late, pressure)
		p.gauge.Set(p.factor())
	}
}

// observe takes one probe's round trip, how late its tick came and the
// host's CPU pressure since the last probe.
func (p *pacer) observe(at time.Time, rtt, late time.Duration, pressure float64) {
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
	p.cpuFactor = next(p.cpuFactor, p.cpuTarget > 0 && pressure > p.cpuTarget)
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
// database's, and the CPU's while no consumer is maxBehind behind.
func (p *pacer) factor() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.behind {
		if d >= p.maxBehind {
			return p.dbFactor
		}
	}
	return max(p.dbFactor, p.cpuFactor)
}

// rest waits after a step of the tail that took worked, for as long as
// the database's queueing and the host's CPUs ask (not at all when they
// have room).
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
