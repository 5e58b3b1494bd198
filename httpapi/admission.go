package httpapi

import (
	"math"
	"net/http"
	"sync"
	"time"
)

// Defaults of the adaptive concurrency limit (LEDGERD_CONCURRENCY_*). The
// target is far above a healthy request's latency (a single transfer takes
// a few milliseconds, a batch of 1,000 some tens) and below the point where
// clients give up and retry, which would add load. The floor leaves room
// for the bench's 64 closed-loop clients after a cut; the ceiling is never
// reached by a healthy node, whose group commit wants many requests queued.
const (
	DefaultConcurrencyTarget = 250 * time.Millisecond
	DefaultConcurrencyMin    = 64
	DefaultConcurrencyMax    = 2048
)

// AdmissionConfig configures the adaptive concurrency limit.
type AdmissionConfig struct {
	// Target is the request latency above which the limit shrinks; 0
	// turns the limit off.
	Target time.Duration
	// Min and Max bound the limit (0: the defaults).
	Min, Max int
}

// admission is an AIMD concurrency limiter. Every request takes a slot
// before anything else is done for it, and a request that finds none free
// is answered 503 overloaded at once: under overload the node answers the
// surplus in microseconds instead of queueing it until every request's
// latency is past its client's timeout.
//
// The limit follows what the node can do, judged once per window (the
// target latency): when more than 5 % of the window's answers were slower
// than the target or 503 (the writer's queue or the pool refused them),
// the limit drops to what the node just did at the target latency (Little's
// law: answers per second × target), and by at least a tenth; otherwise,
// if the limit was in use, it grows by a tenth (so from the floor back to
// the ceiling within some tens of windows, a few seconds).
type admission struct {
	target   time.Duration
	min, max float64
	now      func() time.Time
	metrics  *Metrics

	mu       sync.Mutex
	limit    float64
	inFlight int
	// The current window: its start, its answers, how many were bad,
	// and the most requests in flight during it.
	winStart time.Time
	answers  int
	bad      int
	peak     int
}

func newAdmission(cfg AdmissionConfig, m *Metrics) *admission {
	if cfg.Target <= 0 {
		return nil
	}
	if cfg.Min <= 0 {
		cfg.Min = DefaultConcurrencyMin
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultConcurrencyMax
	}
	if cfg.Max < cfg.Min {
		cfg.Max = cfg.Min
	}
	a := &admission{target: cfg.Target, min: float64(cfg.Min), max: float64(cfg.Max), now: time.Now,
		metrics: m, limit: float64(cfg.Max)}
	a.metrics.observeLimit(cfg.Max)
	return a
}

// acquire takes a slot; false means the request must be shed.
func (a *admission) acquire() bool {
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if float64(a.inFlight) >= math.Floor(a.limit) {
		return false
	}
	a.inFlight++
	a.peak = max(a.peak, a.inFlight)
	return true
}

// release gives the slot back with what the request showed of the node's
// health: its latency and status.
func (a *admission) release(d time.Duration, status int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight--
	a.answers++
	if d > a.target || status == http.StatusServiceUnavailable {
		a.bad++
	}
	now := a.now()
	if a.winStart.IsZero() {
		a.winStart = now
	}
	elapsed := now.Sub(a.winStart)
	if elapsed < a.target {
		return
	}
	old := a.limit
	switch {
	case a.bad*20 > a.answers:
		done := float64(a.answers) / elapsed.Seconds() * a.target.Seconds()
		a.limit = max(a.min, min(a.limit*0.9, done))
	case float64(a.peak) >= a.limit/2:
		// Grow only when the limit was in use: a node that idles at ten
		// requests learns nothing about whether it could take a thousand.
		a.limit = min(a.max, a.limit*1.1+1)
	}
	a.winStart, a.answers, a.bad, a.peak = now, 0, 0, a.inFlight
	if int(old) != int(a.limit) {
		a.metrics.observeLimit(int(a.limit))
	}
}

// current returns the limit and the requests holding a slot.
func (a *admission) current() (limit, inFlight int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(a.limit), a.inFlight
}

// exempt are the paths never shed: the probes must tell the load balancer
// the truth about the node even (especially) while it sheds.
func exempt(path string) bool { return path == "/healthz" || path == "/readyz" }
