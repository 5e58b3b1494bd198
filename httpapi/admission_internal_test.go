package httpapi

import (
	"net/http"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAdmission(target time.Duration, lo, hi int) (*admission, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	a := newAdmission(AdmissionConfig{Target: target, Min: lo, Max: hi}, nil)
	a.now = clk.now
	return a, clk
}

// TestAdmissionShedsBeyondLimit: the limit is a hard bound on requests
// in flight, and a released slot is free again.
func TestAdmissionShedsBeyondLimit(t *testing.T) {
	a, _ := newTestAdmission(100*time.Millisecond, 2, 4)
	for i := range 4 {
		if !a.acquire() {
			t.Fatalf("request %d refused below the limit", i+1)
		}
	}
	if a.acquire() {
		t.Fatal("a fifth request was admitted at a limit of 4")
	}
	a.release(time.Millisecond, http.StatusCreated)
	if !a.acquire() {
		t.Fatal("a freed slot was not reused")
	}
	if _, n := a.current(); n != 4 {
		t.Fatalf("in flight %d, want 4", n)
	}
}

// run drives a for the given time in 1 ms steps: each step fills the
// free slots up to busy requests in flight (fewer when the limit is
// lower) and answers perMs of them, the i-th (counting from 0) with
// latency(i, requests in flight) and status 200.
func run(a *admission, clk *fakeClock, d time.Duration, busy, perMs int, latency func(i, inFlight int) time.Duration) {
	i := 0
	for range int(d / time.Millisecond) {
		for {
			_, n := a.current()
			if n >= busy || !a.acquire() {
				break
			}
		}
		clk.advance(time.Millisecond)
		for range perMs {
			if _, n := a.current(); n == 0 {
				break
			}
			_, n := a.current()
			a.release(latency(i, n), http.StatusOK)
			i++
		}
	}
}

func constant(d time.Duration) func(int, int) time.Duration {
	return func(int, int) time.Duration { return d }
}

// queueing is a node that completes perSecond requests: a request's
// latency is the queue ahead of it (Little's law).
func queueing(perSecond int) func(int, int) time.Duration {
	return func(_, n int) time.Duration { return time.Duration(n) * time.Second / time.Duration(perSecond) }
}

// TestAdmissionCutsToWhatTheNodeDoes: when answers are slow, the limit
// falls to what the node completes within the target (1,000/s × 100 ms),
// not to the floor; when the node completes almost nothing, to the floor.
func TestAdmissionCutsToWhatTheNodeDoes(t *testing.T) {
	a, clk := newTestAdmission(100*time.Millisecond, 10, 1000)
	run(a, clk, 3*time.Second, 5000, 1, queueing(1000))
	if l, _ := a.current(); l < 70 || l > 130 {
		t.Fatalf("a node answering 1,000/s slowly is limited to %d, want about 100", l)
	}
	a, clk = newTestAdmission(100*time.Millisecond, 10, 1000)
	run(a, clk, time.Second, 5000, 1, func(i, _ int) time.Duration {
		if i%100 == 0 {
			return time.Second // 1 %: the odd slow answer
		}
		return time.Millisecond
	})
	if l, _ := a.current(); l != 1000 {
		t.Fatalf("1 %% slow answers moved the limit to %d", l)
	}
	a, clk = newTestAdmission(100*time.Millisecond, 10, 1000)
	for range 3000 {
		a.acquire()
	}
	for range 100 {
		clk.advance(100 * time.Millisecond)
		a.release(time.Second, http.StatusServiceUnavailable)
	}
	if l, _ := a.current(); l != 10 {
		t.Fatalf("a node answering only 503 is limited to %d, want the floor 10", l)
	}
}

// TestAdmissionRecovers: once answers are fast again and the limit is in
// use, it grows back to its ceiling within a few seconds, and no further.
func TestAdmissionRecovers(t *testing.T) {
	a, clk := newTestAdmission(100*time.Millisecond, 10, 200)
	a.limit = 10
	run(a, clk, 5*time.Second, 1000, 1000, constant(time.Millisecond))
	if l, _ := a.current(); l != 200 {
		t.Fatalf("limit %d after 5 s of fast answers, want the ceiling 200", l)
	}
}

// TestAdmissionIdleDoesNotGrow: fast answers while the limit is mostly
// unused do not raise it.
func TestAdmissionIdleDoesNotGrow(t *testing.T) {
	a, clk := newTestAdmission(100*time.Millisecond, 10, 1000)
	a.limit = 100
	run(a, clk, 5*time.Second, 10, 10, constant(time.Millisecond))
	if l, _ := a.current(); l != 100 {
		t.Fatalf("an idle node's limit moved to %d", l)
	}
}

func TestAdmissionOff(t *testing.T) {
	if a := newAdmission(AdmissionConfig{}, nil); a != nil {
		t.Fatal("a zero target must turn the limit off")
	}
	var a *admission
	if !a.acquire() {
		t.Fatal("no limit refused a request")
	}
	a.release(time.Hour, http.StatusServiceUnavailable)
}
