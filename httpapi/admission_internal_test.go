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

// TestAdmissionCutsOncePerCooldown: slow answers cut the limit by a fifth,
// but a whole round of slow answers (within one target of each other)
// counts once; the floor holds however long the slowness lasts.
func TestAdmissionCutsOncePerCooldown(t *testing.T) {
	a, clk := newTestAdmission(100*time.Millisecond, 10, 100)
	for range 50 {
		a.acquire()
	}
	for range 50 {
		a.release(time.Second, http.StatusCreated)
	}
	if l, _ := a.current(); l != 80 {
		t.Fatalf("after one slow round the limit is %d, want 80", l)
	}
	clk.advance(100 * time.Millisecond)
	a.acquire()
	a.release(time.Millisecond, http.StatusServiceUnavailable)
	if l, _ := a.current(); l != 64 {
		t.Fatalf("a 503 after the cooldown left the limit at %d, want 64", l)
	}
	for range 100 {
		clk.advance(100 * time.Millisecond)
		a.acquire()
		a.release(time.Second, http.StatusOK)
	}
	if l, _ := a.current(); l != 10 {
		t.Fatalf("the limit fell to %d, below its floor of 10", l)
	}
}

// TestAdmissionRecovers: once answers are fast again and the limit is in
// use, it grows back to its ceiling, and no further.
func TestAdmissionRecovers(t *testing.T) {
	a, _ := newTestAdmission(100*time.Millisecond, 10, 200)
	a.limit = 10
	steps := 0
	for ; steps < 100_000; steps++ {
		l, _ := a.current()
		if l >= 200 {
			break
		}
		// Keep the node busy at its limit: fill it, answer all fast.
		n := 0
		for a.acquire() {
			n++
		}
		for range n {
			a.release(5*time.Millisecond, http.StatusCreated)
		}
	}
	if l, _ := a.current(); l != 200 {
		t.Fatalf("limit %d after %d rounds of fast answers, want the ceiling 200", l, steps)
	}
	if steps > 400 {
		t.Fatalf("recovery from 10 to 200 took %d rounds", steps)
	}
	for range 1000 {
		a.acquire()
		a.release(time.Millisecond, http.StatusOK)
	}
	if l, _ := a.current(); l != 200 {
		t.Fatalf("limit %d beyond the ceiling", l)
	}
}

// TestAdmissionIdleDoesNotGrow: fast answers while the limit is mostly
// unused do not raise it.
func TestAdmissionIdleDoesNotGrow(t *testing.T) {
	a, _ := newTestAdmission(100*time.Millisecond, 10, 1000)
	a.limit = 100
	for range 10_000 {
		a.acquire()
		a.release(time.Millisecond, http.StatusOK)
	}
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
