package loadtest

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// pacer is the schedule of an open loop: operation i is due at
// start + i/rate, whatever happened to the operations before it. Workers
// take tickets in order; a worker that takes a ticket early sleeps until it
// is due, and one that takes it late (every worker was busy: the in-flight
// cap was hit) starts at once. Latency is measured from the due time, so
// time spent in that backlog counts — the generator does not hide a slow
// server by slowing down with it (no coordinated omission). The backlog is
// an index difference, not a queue, so it costs no memory.
type pacer struct {
	start     time.Time
	rate      float64 // operations per second
	warmupOps int64   // tickets before this one are warmup
	limit     int64   // total tickets, 0 = unbounded
	end       time.Time

	next       atomic.Int64
	maxBacklog atomic.Int64 // most tickets due but not started, seen at any take
	late       atomic.Int64 // operations started at least one interval after they were due
}

// newPacer plans warmup, then duration (0 = unbounded) with at most opLimit
// measured operations (0 = unbounded).
func newPacer(start time.Time, rate float64, warmup, duration time.Duration, opLimit int64) *pacer {
	p := &pacer{start: start, rate: rate, warmupOps: int64(math.Ceil(warmup.Seconds() * rate))}
	if opLimit > 0 {
		p.limit = p.warmupOps + opLimit
	}
	if duration > 0 {
		p.end = start.Add(warmup + duration)
	}
	return p
}

// due is the intended start of operation i.
func (p *pacer) due(i int64) time.Time {
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / p.rate))
}

// measureStart is when the measured part begins.
func (p *pacer) measureStart() time.Time { return p.due(p.warmupOps) }

// take claims the next operation. ok is false when the schedule is over.
func (p *pacer) take(now time.Time) (due time.Time, measured, ok bool) {
	i := p.next.Add(1) - 1
	if p.limit > 0 && i >= p.limit {
		return time.Time{}, false, false
	}
	due = p.due(i)
	if !p.end.IsZero() && !due.Before(p.end) {
		return time.Time{}, false, false
	}
	if lag := now.Sub(due); lag > 0 {
		storeMax(&p.maxBacklog, p.dueBy(now)-i)
		if lag.Seconds()*p.rate >= 1 {
			p.late.Add(1)
		}
	}
	return due, i >= p.warmupOps, true
}

// dueBy is the number of operations due at or before now.
func (p *pacer) dueBy(now time.Time) int64 {
	if now.Before(p.start) {
		return 0
	}
	n := int64(now.Sub(p.start).Seconds()*p.rate) + 1
	if p.limit > 0 {
		n = min(n, p.limit)
	}
	if !p.end.IsZero() {
		n = min(n, int64(math.Ceil(p.end.Sub(p.start).Seconds()*p.rate)))
	}
	return n
}

// backlog is the number of operations due by now that no worker has started.
func (p *pacer) backlog(now time.Time) int64 {
	return max(p.dueBy(now)-p.next.Load(), 0)
}

// runOpen drives an open loop: len(workers) is the in-flight cap.
func runOpen(ctx context.Context, workers []*worker, p *pacer) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				due, measured, ok := p.take(time.Now())
				if !ok || !sleepUntil(ctx, due) {
					return
				}
				w.op(ctx, due, measured)
			}
		})
	}
	wg.Wait()
}

// runClosed drives a closed loop: every worker sends its next operation as
// soon as the previous one is answered, from start until end (zero: no
// time limit) or until opLimit measured operations (0: no limit) have
// started. Operations that start before measureStart are warmup.
func runClosed(ctx context.Context, workers []*worker, measureStart, end time.Time, opLimit int64) {
	var used atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !end.IsZero() && !now.Before(end) {
					return
				}
				measured := !now.Before(measureStart)
				if measured && opLimit > 0 && used.Add(1) > opLimit {
					return
				}
				w.op(ctx, now, measured)
			}
		})
	}
	wg.Wait()
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
