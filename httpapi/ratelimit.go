package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is the per-key token bucket of SPEC §2, in process. It protects
// a node from one client; across nodes each node limits on its own (the
// scale-out issue moves this to Redis).
type limiter struct {
	rate  rate.Limit
	burst int
	keys  sync.Map // key id → *rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(perSecond)
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst}
}

// allow takes a token for key; when none is left it returns how long until
// one will be.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	v, ok := l.keys.Load(key)
	if !ok {
		v, _ = l.keys.LoadOrStore(key, rate.NewLimiter(l.rate, l.burst))
	}
	lim := v.(*rate.Limiter)
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
