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
	p := newPacer(nil, nil, nil, 0, time.Minute)
	at := p.start
	step := func(rtt time.Duration) float64 {
		at = at.Add(probeEvery)
		p.observe(at, rtt, 0, 0)
		return p.factor()
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
	if p.observe(at.Add(probeEvery), 300*time.Microsecond, 3*queueTarget, 0); p.factor() != 1 {
		t.Fatalf("late tick: factor %v, want 1", p.factor())
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
	newPacer(nil, nil, nil, 0, time.Minute).rest(t.Context(), time.Hour)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("rested %v", d)
	}
}

// A request path holding more than the target in flight rests the tail
// even while the database has room, until the tail is maxBehind behind;
// below the target (or with the load not watched) it does not rest.
func TestPacerAPILoad(t *testing.T) {
	p := newPacer(nil, nil, nil, 32, time.Minute)
	at := p.start
	for i, w := range []float64{0, 1, 2, 4, 2} {
		at = at.Add(probeEvery)
		inflight := []float64{20, 50, 60, 8000, 5}[i]
		if p.observe(at, 300*time.Microsecond, 0, inflight); p.factor() != w {
			t.Fatalf("%v in flight: factor %v, want %v", inflight, p.factor(), w)
		}
	}
	p.fellBehind("webhooks", 10*time.Second)
	p.fellBehind("fraud", 2*time.Minute)
	if f := p.factor(); f != 0 {
		t.Fatalf("a consumer two minutes behind still yields to the request path: factor %v", f)
	}
	// The database's queueing still counts.
	if p.observe(at.Add(probeEvery), 10*time.Millisecond, 0, 100); p.factor() != 1 {
		t.Fatalf("database queueing while behind: factor %v, want 1", p.factor())
	}
	p.fellBehind("fraud", time.Second)
	if f := p.factor(); f != 4 {
		t.Fatalf("caught up again: factor %v, want the request path's 4", f)
	}
	off := newPacer(nil, nil, nil, 0, time.Minute)
	if off.observe(off.start.Add(probeEvery), 300*time.Microsecond, 0, 1e6); off.factor() != 0 {
		t.Fatalf("load not watched: factor %v at 1e6 in flight", off.factor())
	}
}
