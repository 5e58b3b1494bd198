package httpapi

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"golang.org/x/time/rate"
)

// RateLimiter decides whether a key may make one more request; when not,
// it says how long until it may. own is the key's own limit (the zero
// value: the node's default).
type RateLimiter interface {
	Allow(ctx context.Context, key string, own ledgerd.RateLimit) (bool, time.Duration)
}

// limiter is the per-key token bucket of docs/api.md, in process. It
// protects a node from one client; across nodes each node limits on its
// own unless a shared limiter (Redis) is configured. A key's own limit
// (from the database, with the key) replaces the default; a key without
// one is not limited when the default is off.
type limiter struct {
	def  ledgerd.RateLimit // PerSecond 0: no default limit
	keys sync.Map          // key id → *bucket
}

// bucket is one key's token bucket with the limit it was made for.
type bucket struct {
	lim   *rate.Limiter
	limit ledgerd.RateLimit
}

func newBucket(l ledgerd.RateLimit) *bucket {
	return &bucket{lim: rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst), limit: l}
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{def: nodeLimit(perSecond, burst)}
}

// nodeLimit is the node's default as a RateLimit: a burst of 0 means
// one second's worth (at least 1); a rate of 0 or less turns it off.
func nodeLimit(perSecond float64, burst int) ledgerd.RateLimit {
	if perSecond <= 0 {
		return ledgerd.RateLimit{}
	}
	if burst <= 0 {
		burst = max(1, int(perSecond))
	}
	return ledgerd.RateLimit{PerSecond: perSecond, Burst: burst}
}

// effective is the limit that applies to a key, and false when none does.
func (l *limiter) effective(own ledgerd.RateLimit) (ledgerd.RateLimit, bool) {
	if own.PerSecond > 0 {
		return own, true
	}
	return l.def, l.def.PerSecond > 0
}

// Allow takes a token for key; when none is left it returns how long until
// one will be. A key whose limit changed since its last request starts a
// fresh bucket of the new limit, full, as the shared limiter does (see
// redisKey): a key whose limit was just raised is served at once.
func (l *limiter) Allow(_ context.Context, key string, own ledgerd.RateLimit) (bool, time.Duration) {
	lim, ok := l.effective(own)
	if !ok {
		return true, 0
	}
	v, found := l.keys.Load(key)
	if !found {
		v, _ = l.keys.LoadOrStore(key, newBucket(lim))
	}
	if v.(*bucket).limit != lim {
		// Whoever swaps first wins; a loser uses the winner's bucket,
		// which has the new limit too unless the limit changed again.
		if nb := newBucket(lim); l.keys.CompareAndSwap(key, v, nb) {
			v = nb
		} else {
			v, _ = l.keys.Load(key)
		}
	}
	b := v.(*bucket)
	now := time.Now()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Defaults of the limit on failed authentications per client address: an
// unknown key id costs a database query, which a flood once ran at 15.7k/s.
// Known keys never touch this limit, so it is generous for a proxy that
// carries many clients and tight for one address guessing ids.
const (
	DefaultAuthFailRate  = 200
	DefaultAuthFailBurst = 1000
	maxAuthAddrs         = 10_000
)

// addrLimiter is a token bucket per client address for authentications
// that would ask the database about a key id it has not seen. The map is
// bounded: when full, addresses whose bucket is full again (they carry no
// state) are dropped, and beyond that new addresses share one bucket.
type addrLimiter struct {
	rate     rate.Limit
	burst    int
	mu       sync.Mutex
	addrs    map[string]*rate.Limiter
	overflow *rate.Limiter
}

func newAddrLimiter(perSecond float64, burst int) *addrLimiter {
	if perSecond <= 0 {
		perSecond = DefaultAuthFailRate
	}
	if burst <= 0 {
		burst = DefaultAuthFailBurst
	}
	return &addrLimiter{rate: rate.Limit(perSecond), burst: burst, addrs: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

func (l *addrLimiter) bucket(addr string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.addrs[addr]; ok {
		return b
	}
	if len(l.addrs) >= maxAuthAddrs {
		now := time.Now()
		for a, b := range l.addrs {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.addrs, a)
			}
		}
		if len(l.addrs) >= maxAuthAddrs {
			return l.overflow
		}
	}
	b := rate.NewLimiter(l.rate, l.burst)
	l.addrs[addr] = b
	return b
}

// reserve takes a token for addr. It answers the reservation (to cancel
// when the key turns out to exist) or how long until a token is free.
func (l *addrLimiter) reserve(addr string) (*rate.Reservation, time.Duration) {
	now := time.Now()
	r := l.bucket(addr).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// clientAddr is the address a request's failures count against: the peer's
// IP, an IPv6 peer's /64 (one host usually holds the whole prefix). Behind a
// proxy every client has the proxy's address; known keys are not limited,
// so that only slows clients presenting keys this node has not seen.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.Unmap().String()
}
