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
// again while a step found a full batch of work.
func Run(ctx context.Context, s Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.ChainAudit(ctx, BatchLimit)
		if err != nil && ctx.Err() == nil {
			log.Warn("audit: chaining failed; retrying", "err", err)
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
