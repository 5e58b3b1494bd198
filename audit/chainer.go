package audit

import (
	"context"
	"log/slog"
	"time"
)

// Store is where the chainer works: ChainAudit chains up to limit
// unchained entries of each ledger and says how many it chained.
type Store interface {
	ChainAudit(ctx context.Context, limit int) (int, error)
}

// BatchLimit bounds one ledger's share of a chaining step.
const BatchLimit = 5000

// Run chains entries until ctx ends: a step every interval, and at once
// again while a step found a full batch of work. rest, when set, is told
// how long each step that chained something took, and waits as long as the
// database's load asks (the worker's pacer); nil: no waiting.
func Run(ctx context.Context, s Store, interval time.Duration, log *slog.Logger, rest func(context.Context, time.Duration)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := s.ChainAudit(ctx, BatchLimit)
		if err != nil && ctx.Err() == nil {
			log.Warn("audit: chaining failed; retrying", "err", err)
		}
		if n > 0 && rest != nil {
			rest(ctx, time.Since(start))
		}
		if err == nil && n >= BatchLimit {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
