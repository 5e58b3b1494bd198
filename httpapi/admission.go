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
	DefaultConcurrencyMin    = 32
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
// latency is past its client's timeout. The limit follows what the node
// can do: it grows by about 2 % (at least one) per limit's worth of
// requests answered within the target, and is cut by a fifth when one is
// slower or answered 503 (the writer's queue or the pool refused it), at
// most once per cooldown so that one slow round is not counted once per
// request in it.
type admission struct {
	target   time.Duration
	min, max float64
	now      func() time.Time
	metrics  *Metrics

	mu       sync.Mutex
	limit    float64
	inFlight int
	lastCut  time.Time
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
	old := a.limit
	if d > a.target || status == http.StatusServiceUnavailable {
		now := a.now()
		// The cooldown is the target itself: requests admitted before a
		// cut finish within about that, and their slowness was already
		// counted.
		if now.Sub(a.lastCut) >= a.target {
			a.lastCut = now
			a.limit = max(a.min, a.limit*0.8)
		}
	} else if float64(a.inFlight+1) >= a.limit/2 {
		// Grow only when the limit is in use: a node that idles at ten
		// requests learns nothing about whether it could take a thousand.
		a.limit = min(a.max, a.limit+max(1, a.limit*0.02)/a.limit)
	}
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
