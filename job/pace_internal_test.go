package job

import (
	"testing"
	"time"
)

// The pacer rests the tail only while the database queues beyond its base
// delay, doubling up to maxFactor, and stops resting once it has room; the
// base is the least round trip of the last two minutes, so a base that
// rose for good (a slower network) becomes the new base.
func TestPacerFactor(t *testing.T) {
	p := newPacer(nil, nil)
	at := p.start
	step := func(rtt time.Duration) float64 {
		at = at.Add(probeEvery)
		return p.observe(at, rtt, 0)
	}
	for range 10 {
		if f := step(300 * time.Microsecond); f != 0 {
			t.Fatalf("idle database: factor %v", f)
		}
	}
	want := []float64{1, 2, 4, 8, 16, 32, 32}
	for i, w := range want {
		if f := step(300*time.Microsecond + 3*queueTarget); f != w {
			t.Fatalf("queueing probe %d: factor %v, want %v", i, f, w)
		}
	}
	// Queueing below the target is room: halving back to nothing.
	for _, w := range []float64{16, 8, 4, 2, 1, 0.5, 0.25, 0} {
		if f := step(300*time.Microsecond + queueTarget/2); f != w {
			t.Fatalf("room again: factor %v, want %v", f, w)
		}
	}
	// A timer that fires late is a CPU the request path is using.
	if f := p.observe(at.Add(probeEvery), 300*time.Microsecond, 3*queueTarget); f != 1 {
		t.Fatalf("late tick: factor %v, want 1", f)
	}
	// A base that rose for good: after two minutes of 10 ms round trips,
	// 10 ms is no queueing.
	for range int(2*time.Minute/probeEvery) + int(baseBucket/probeEvery) {
		step(10 * time.Millisecond)
	}
	if f := step(10 * time.Millisecond); f != 0 {
		t.Fatalf("steady 10 ms round trips: factor %v after the base moved", f)
	}
}

// A nil pacer (a store without a database to watch) never rests, and a
// pacer at rest returns at once.
func TestPacerRest(t *testing.T) {
	var none *pacer
	start := time.Now()
	none.rest(t.Context(), time.Hour)
	newPacer(nil, nil).rest(t.Context(), time.Hour)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("rested %v", d)
	}
}
