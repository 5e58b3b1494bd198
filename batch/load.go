package batch

import (
	"context"
	"log/slog"
	"time"
)

// PublishLoad reports, every interval, how many transactions the writer
// held on average over the interval (submitted and not yet answered,
// from the time-weighted sum Submit keeps): the request path's demand,
// which the tail yields to (job/pace.go). A writer with nothing in flight
// publishes once and then stays quiet, so an idle node writes nothing.
func (w *Writer) PublishLoad(ctx context.Context, publish func(context.Context, float64) error, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	quiet := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		inflight := float64(w.load.Swap(0)) / float64(now.Sub(last))
		last = now
		if inflight == 0 && quiet {
			continue
		}
		quiet = inflight == 0
		pctx, cancel := context.WithTimeout(ctx, interval)
		if err := publish(pctx, inflight); err != nil && ctx.Err() == nil {
			log.Debug("publishing the write path's load", "err", err)
		}
		cancel()
	}
}
