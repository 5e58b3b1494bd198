package job

import (
	"context"
	"math/rand/v2"
	"time"
)

// ArchiveConfig is the periodic archival job (package archive, wired in
// cmd/ledgerd): every worker runs it at Every; the archiver's lease lets
// one of them work at a time, the others find it busy and wait for the
// next round.
type ArchiveConfig struct {
	// Run archives what the retention policies allow; nil turns the job
	// off.
	Run func(context.Context) error
	// Every is the time between runs (default one hour).
	Every time.Duration
}

// archiveLoop runs the archival job until ctx ends. The first run waits a
// random part of the interval, so that workers started together do not
// all try at once.
func (w *Worker) archiveLoop(ctx context.Context) {
	c := w.cfg.Archive
	if c.Run == nil {
		return
	}
	every := c.Every
	if every <= 0 {
		every = time.Hour
	}
	wait := rand.N(every)
	for {
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("archive", "err", err)
		}
		wait = every
	}
}
