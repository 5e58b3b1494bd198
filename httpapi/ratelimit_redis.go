package httpapi

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Bounds on what the shared limiter may cost a request. Redis on the
// node's network answers in well under a millisecond; a request must not
// wait for one that does not answer, and after a failure the node does not
// ask again for a while, so that a dead Redis costs one timeout per second
// rather than one per request.
const (
	redisLimitTimeout = 50 * time.Millisecond
	redisRetryAfter   = time.Second
	redisKeyPrefix    = "ledgerd:key:"
)

// RedisLimiter is the per-key limit shared by every node: one GCRA bucket
// per key in Redis (redis_rate), so a key's budget is the same whichever
// node its requests reach. When Redis fails the node falls back to its own
// in-process bucket (failing open: a limiter outage must never turn into an
// API outage), logs it and counts it.
type RedisLimiter struct {
	rl        *redis_rate.Limiter
	limit     redis_rate.Limit
	local     *limiter
	log       *slog.Logger
	metrics   *Metrics
	downUntil atomic.Int64 // unix nanoseconds; Redis is skipped before it
	lastLog   atomic.Int64
}

// NewRedisLimiter limits every key to perSecond requests with the given
// burst, in the Redis that client talks to.
func NewRedisLimiter(client redis.UniversalClient, perSecond float64, burst int, log *slog.Logger, m *Metrics) *RedisLimiter {
	if burst <= 0 {
		burst = max(1, int(perSecond))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// GCRA spaces requests by Period/Rate: a period of 1,000 s keeps
	// fractional rates (0.5/s) exact in redis_rate's integer Rate.
	lim := redis_rate.Limit{Rate: max(1, int(perSecond*1000+0.5)), Burst: burst, Period: 1000 * time.Second}
	return &RedisLimiter{rl: redis_rate.NewLimiter(client), limit: lim, local: newLimiter(perSecond, burst),
		log: log.With("component", "ratelimit"), metrics: m}
}

// Allow takes one request from key's shared budget.
func (l *RedisLimiter) Allow(ctx context.Context, key string) (bool, time.Duration) {
	now := time.Now()
	if now.UnixNano() < l.downUntil.Load() {
		l.metrics.observeRateLimitFallback()
		return l.local.Allow(ctx, key)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisLimitTimeout)
	defer cancel()
	res, err := l.rl.Allow(rctx, redisKeyPrefix+key, l.limit)
	if err != nil {
		l.downUntil.Store(now.Add(redisRetryAfter).UnixNano())
		l.metrics.observeRateLimitFallback()
		// One line per few seconds is enough to say Redis is away.
		if last := l.lastLog.Load(); now.UnixNano()-last > int64(5*time.Second) && l.lastLog.CompareAndSwap(last, now.UnixNano()) {
			l.log.Warn("shared rate limit unavailable; limiting on this node alone", "err", err)
		}
		return l.local.Allow(ctx, key)
	}
	if res.Allowed == 0 {
		return false, max(res.RetryAfter, time.Millisecond)
	}
	return true, 0
}
