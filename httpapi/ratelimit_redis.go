package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/ledgerd/ledgerd"
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
// node its requests reach. The rate and burst go to Redis with every
// request (arguments of redis_rate's script), so a key's own limit, read
// from the database with the key, holds on every node as soon as each
// has read it. When Redis fails the node falls back to its own in-process
// bucket (failing open: a limiter outage must never turn into an API
// outage), logs it and counts it.
type RedisLimiter struct {
	rl        *redis_rate.Limiter
	local     *limiter
	log       *slog.Logger
	metrics   *Metrics
	downUntil atomic.Int64 // unix nanoseconds; Redis is skipped before it
	lastLog   atomic.Int64
}

// NewRedisLimiter limits every key without a limit of its own to
// perSecond requests with the given burst (0: no default limit), in the
// Redis that client talks to.
func NewRedisLimiter(client redis.UniversalClient, perSecond float64, burst int, log *slog.Logger, m *Metrics) *RedisLimiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisLimiter{rl: redis_rate.NewLimiter(client), local: newLimiter(perSecond, burst),
		log: log.With("component", "ratelimit"), metrics: m}
}

// redisKey names a key's bucket under the limit it is counted against.
// The limit is part of the name because GCRA keeps one timestamp, spaced
// by the rate it was written with: after a key's rate was lowered to one
// request a minute, raising it again would leave the key refused until
// that distant timestamp passed. A changed limit therefore starts a fresh
// bucket (a full burst of the new limit); the old one expires in Redis by
// itself once drained.
func redisKey(key string, lim redis_rate.Limit) string {
	return redisKeyPrefix + key + ":" + strconv.Itoa(lim.Rate) + ":" + strconv.Itoa(lim.Burst)
}

// Allow takes one request from key's shared budget.
func (l *RedisLimiter) Allow(ctx context.Context, key string, own ledgerd.RateLimit) (bool, time.Duration) {
	eff, ok := l.local.effective(own)
	if !ok {
		return true, 0
	}
	now := time.Now()
	if now.UnixNano() < l.downUntil.Load() {
		l.metrics.observeRateLimitFallback()
		return l.local.Allow(ctx, key, own)
	}
	// GCRA spaces requests by Period/Rate: a period of 1,000 s keeps
	// fractional rates (0.5/s) exact in redis_rate's integer Rate.
	lim := redis_rate.Limit{Rate: eff.PerKilosecond(), Burst: eff.Burst, Period: 1000 * time.Second}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisLimitTimeout)
	defer cancel()
	res, err := l.rl.Allow(rctx, redisKey(key, lim), lim)
	if err != nil {
		l.downUntil.Store(now.Add(redisRetryAfter).UnixNano())
		l.metrics.observeRateLimitFallback()
		// One line per few seconds is enough to say Redis is away.
		if last := l.lastLog.Load(); now.UnixNano()-last > int64(5*time.Second) && l.lastLog.CompareAndSwap(last, now.UnixNano()) {
			l.log.Warn("shared rate limit unavailable; limiting on this node alone", "err", err)
		}
		return l.local.Allow(ctx, key, own)
	}
	if res.Allowed == 0 {
		return false, max(res.RetryAfter, time.Millisecond)
	}
	return true, 0
}
