package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultSchedule(t *testing.T) {
	t.Parallel()
	if n := DefaultSchedule.Attempts(); n != 8 {
		t.Fatalf("%d attempts, want 8", n)
	}
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	// "About 28 hours in all": 5s+5m+30m+2h+5h+10h+10h.
	if total < 27*time.Hour+30*time.Minute || total > 28*time.Hour {
		t.Fatalf("default schedule spans %s", total)
	}
	// Its text form parses back to itself, so the default can be written
	// into the environment and mean the same.
	back, err := ParseSchedule(DefaultSchedule.String())
	if err != nil || back.String() != DefaultSchedule.String() {
		t.Fatalf("round trip: %v, %v", back, err)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Schedule
	}{
		{"1s,1s,2s", Schedule{time.Second, time.Second, 2 * time.Second}},
		{" 100ms , 1m30s,2h ", Schedule{100 * time.Millisecond, 90 * time.Second, 2 * time.Hour}},
		{"168h", Schedule{168 * time.Hour}},
		{strings.Repeat("1s,", 31) + "1s", nil}, // 32 waits, the most
	}
	for _, c := range good {
		got, err := ParseSchedule(c.in)
		if err != nil {
			t.Fatalf("ParseSchedule(%q): %v", c.in, err)
		}
		if c.want != nil && got.String() != c.want.String() {
			t.Fatalf("ParseSchedule(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	if s, _ := ParseSchedule("1s,1s,2s"); s.Attempts() != 4 {
		t.Fatalf("1s,1s,2s gives %d attempts, want 4", s.Attempts())
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"1s,,2s", "wait 2 is empty"},
		{"1s,", "wait 2 is empty"},
		{"5", `wait 1 "5" is not a duration`},
		{"1s,fast", `wait 2 "fast" is not a duration`},
		{"0s", "must be positive"},
		{"1s,-1s", "must be positive"},
		{"169h", "at most 168h"},
		{strings.Repeat("1s,", 32) + "1s", "at most 32"},
		{"1s;2s", "is not a duration"},
	}
	for _, c := range bad {
		_, err := ParseSchedule(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseSchedule(%q) = %v, want an error containing %q", c.in, err, c.msg)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	s := Schedule{time.Second, time.Minute, time.Hour}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// The first attempt is immediate, whatever the jitter.
	if at, ok := s.Next(0, now, func() float64 { return 0.99 }); !ok || !at.Equal(now) {
		t.Fatalf("first attempt at %v, %v", at, ok)
	}
	for n, base := range s {
		lo, _ := s.Next(n+1, now, func() float64 { return 0 })
		mid, _ := s.Next(n+1, now, func() float64 { return 0.5 })
		hi, _ := s.Next(n+1, now, func() float64 { return 0.999999 })
		if lo.Sub(now) != base*9/10 || mid.Sub(now) != base || hi.Sub(now) >= base*11/10 || hi.Sub(now) < base*109/100 {
			t.Fatalf("after attempt %d: %v %v %v for a wait of %v", n+1, lo.Sub(now), mid.Sub(now), hi.Sub(now), base)
		}
		// With the real source, every draw lies within ±10 %.
		for range 1000 {
			at, ok := s.Next(n+1, now, nil)
			if d := at.Sub(now); !ok || d < base*9/10 || d >= base*11/10 {
				t.Fatalf("after attempt %d: wait %v outside ±10%% of %v", n+1, d, base)
			}
		}
	}
	if _, ok := s.Next(4, now, nil); ok {
		t.Fatal("a fifth attempt offered after four")
	}
	// A broken random source never makes a wait negative.
	if at, ok := s.Next(1, now, func() float64 { return -100 }); !ok || at.Before(now) {
		t.Fatalf("negative draw gave %v", at.Sub(now))
	}
}

// FuzzParseSchedule: the parser never panics, and what it accepts is a
// valid schedule that renders and parses back to the same waits.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"1s,1s,2s", DefaultSchedule.String(), "", ",", "1s,,", "-1s", "1e9h", "9223372036854775807ns", "1.5h, 2m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSchedule(in)
		if err != nil {
			return
		}
		if len(s) == 0 || len(s) > maxScheduleLen {
			t.Fatalf("%q gave %d waits", in, len(s))
		}
		for _, d := range s {
			if d <= 0 || d > maxScheduleWait {
				t.Fatalf("%q gave wait %v", in, d)
			}
		}
		back, err := ParseSchedule(s.String())
		if err != nil || back.String() != s.String() {
			t.Fatalf("%q: round trip %v, %v", in, back, err)
		}
	})
}
