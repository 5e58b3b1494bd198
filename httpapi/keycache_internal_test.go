package httpapi

import (
	"fmt"
	"testing"
	"time"
)

// TestNegCacheBounded: a flood of missing names never holds more than the
// bound, the newest name is remembered, and entries lapse after the TTL.
func TestNegCacheBounded(t *testing.T) {
	c := newNegCache(50*time.Millisecond, 1000)
	for i := range 200_000 {
		c.add(fmt.Sprint(i))
	}
	if n := len(c.m); n > 1000 {
		t.Fatalf("%d entries, bound 1000", n)
	}
	if !c.has("199999") {
		t.Fatal("the newest name was dropped")
	}
	time.Sleep(60 * time.Millisecond)
	if c.has("199999") {
		t.Fatal("an entry outlived its TTL")
	}
	c.add("x")
	c.remove("x")
	if c.has("x") {
		t.Fatal("a removed name is still missing")
	}
}

// TestAddrLimiterBounded: buckets per address are bounded; addresses past
// the bound share one bucket rather than getting fresh ones.
func TestAddrLimiterBounded(t *testing.T) {
	l := newAddrLimiter(0.001, 1) // no refill within the test
	for i := range maxAuthAddrs + 500 {
		if r, _ := l.reserve(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); r == nil && i < maxAuthAddrs {
			t.Fatalf("address %d refused its first attempt", i)
		}
	}
	if len(l.addrs) > maxAuthAddrs {
		t.Fatalf("%d buckets, bound %d", len(l.addrs), maxAuthAddrs)
	}
	if r, wait := l.reserve("192.0.2.1"); r != nil || wait <= 0 {
		t.Fatal("a new address past the bound got a fresh bucket")
	}
	for _, tc := range [][2]string{
		{"127.0.0.1:5000", "127.0.0.1"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
	} {
		if got := clientAddr(tc[0]); got != tc[1] {
			t.Errorf("clientAddr(%s) = %s, want %s", tc[0], got, tc[1])
		}
	}
}
