package batch

import (
	"context"
	"log/slog"
	"time"

	"github.com/ledgerd/ledgerd"
)

// HoldSource finds holds past their deadline.
type HoldSource interface {
	DueHolds(ctx context.Context, limit int) ([]ledgerd.DueHold, error)
}

// ExpireHolds commits the expiry of every hold past its deadline, checking
// every interval until ctx ends. Expiries go through the writer like any
// other transaction, so they take the ledger's ordering lock and get the
// next sequence; every node may run this loop, because the batch re-checks
// the hold's state under the lock and an expiry that no longer applies is
// dropped (a hold resolves exactly once).
func (w *Writer) ExpireHolds(ctx context.Context, src HoldSource, interval time.Duration, log *slog.Logger) {
	log = log.With("component", "expiry")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range 10 { // bounded catch-up per tick
			due, err := src.DueHolds(ctx, 1000)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("finding due holds", "err", err)
				}
				break
			}
			if len(due) == 0 {
				break
			}
			units := map[int64]*ledgerd.WriteUnit{}
			for _, h := range due {
				u := units[h.LedgerID]
				if u == nil {
					u = &ledgerd.WriteUnit{}
					units[h.LedgerID] = u
				}
				u.Items = append(u.Items, &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{},
					Action: &ledgerd.Action{Kind: ledgerd.ActionExpire, Target: h.ID}})
			}
			for ledgerID, u := range units {
				if err := w.Submit(ctx, ledgerID, u); err != nil && ctx.Err() == nil {
					log.Warn("expiring holds", "ledger_id", ledgerID, "err", err)
				}
			}
			if len(due) < 1000 {
				break
			}
		}
	}
}
