package loadtest

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestPacer_schedule(t *testing.T) {
	t.Parallel()
	p := newPacer(t0, 1000, 0, time.Second, 0)
	for i := range int64(1000) {
		due, measured, ok := p.take(t0)
		if !ok || !measured {
			t.Fatalf("ticket %d: ok=%v measured=%v", i, ok, measured)
		}
		if want := t0.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("ticket %d due %v, want %v", i, due.Sub(t0), want.Sub(t0))
		}
	}
	if _, _, ok := p.take(t0); ok {
		t.Errorf("a ticket due at the end of the run was handed out")
	}
}

func TestPacer_warmupAndLimit(t *testing.T) {
	t.Parallel()
	p := newPacer(t0, 100, 250*time.Millisecond, 0, 10)
	if p.warmupOps != 25 {
		t.Fatalf("warmupOps = %d, want 25", p.warmupOps)
	}
	if got := p.measureStart().Sub(t0); got != 250*time.Millisecond {
		t.Errorf("measureStart = %v", got)
	}
	var warm, measured int
	for {
		_, m, ok := p.take(t0)
		if !ok {
			break
		}
		if m {
			measured++
		} else {
			warm++
		}
	}
	if warm != 25 || measured != 10 {
		t.Errorf("warmup %d, measured %d; want 25 and 10", warm, measured)
	}
}

func TestPacer_backlog(t *testing.T) {
	t.Parallel()
	p := newPacer(t0, 10, 0, 0, 0) // one every 100 ms, no end
	if b := p.backlog(t0.Add(-time.Second)); b != 0 {
		t.Errorf("backlog before start = %d", b)
	}
	// At 1.05 s, tickets 0..10 are due; none taken.
	now := t0.Add(1050 * time.Millisecond)
	if b := p.backlog(now); b != 11 {
		t.Errorf("backlog = %d, want 11", b)
	}
	// Taking ticket 0 this late sees the whole backlog and counts as late.
	if _, _, ok := p.take(now); !ok {
		t.Fatal("take")
	}
	if got := p.maxBacklog.Load(); got != 11 {
		t.Errorf("maxBacklog = %d, want 11", got)
	}
	if got := p.late.Load(); got != 1 {
		t.Errorf("late = %d, want 1", got)
	}
	// Ticket 1 (due 100 ms) taken on time: neither late nor backlogged.
	if _, _, ok := p.take(t0.Add(50 * time.Millisecond)); !ok {
		t.Fatal("take")
	}
	if got := p.late.Load(); got != 1 {
		t.Errorf("late = %d after an early take, want 1", got)
	}
	if b := p.backlog(now); b != 9 {
		t.Errorf("backlog = %d, want 9", b)
	}
}

func TestSleepUntil_cancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if sleepUntil(ctx, start.Add(time.Hour)) {
		t.Error("sleepUntil returned true for a cancelled context")
	}
	if time.Since(start) > time.Second {
		t.Error("sleepUntil did not return at once")
	}
}
