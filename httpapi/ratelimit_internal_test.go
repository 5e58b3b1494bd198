package httpapi

import (
	"context"
	"testing"

	"github.com/ledgerd/ledgerd"
)

// takes counts how many of n requests key gets at once.
func takes(l *limiter, key string, own ledgerd.RateLimit, n int) int {
	got := 0
	for range n {
		if ok, _ := l.Allow(context.Background(), key, own); ok {
			got++
		}
	}
	return got
}

// TestLimiterOwnLimit: a key's own limit replaces the node's default,
// also when the default is off; a changed limit starts a full bucket of
// the new size; keys do not share buckets.
func TestLimiterOwnLimit(t *testing.T) {
	slow := ledgerd.RateLimit{PerSecond: 0.001, Burst: 3}
	wider := ledgerd.RateLimit{PerSecond: 0.001, Burst: 7}

	off := newLimiter(0, 0)
	if got := takes(off, "a", ledgerd.RateLimit{}, 100); got != 100 {
		t.Fatalf("no default, no own limit: %d of 100 served", got)
	}
	if got := takes(off, "a", slow, 10); got != 3 {
		t.Fatalf("no default, own burst 3: %d of 10 served", got)
	}

	l := newLimiter(0.001, 5)
	if got := takes(l, "k", ledgerd.RateLimit{}, 10); got != 5 {
		t.Fatalf("default burst 5: %d of 10 served", got)
	}
	if got := takes(l, "k", slow, 10); got != 3 {
		t.Fatalf("own burst 3 after the default's was spent: %d of 10 served", got)
	}
	if got := takes(l, "k", slow, 10); got != 0 {
		t.Fatalf("the same limit again: %d served from a spent bucket", got)
	}
	if got := takes(l, "k", wider, 10); got != 7 {
		t.Fatalf("raised to burst 7: %d of 10 served", got)
	}
	if got := takes(l, "other", slow, 10); got != 3 {
		t.Fatalf("another key: %d of 10 served", got)
	}
	if ok, wait := l.Allow(context.Background(), "k", wider); ok || wait <= 0 {
		t.Fatalf("spent bucket: ok %v, wait %v", ok, wait)
	}
}
