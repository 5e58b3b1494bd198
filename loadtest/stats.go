package loadtest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: microsecond resolution from 1 µs to 60 s with three
// significant digits, a fixed few hundred KiB however long the run — the
// generator keeps no per-request data.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histSigFigs   = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// recordLatency clamps into the histogram's range so that an outlier beyond
// 60 s still counts (as 60 s) instead of being dropped.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(us, histMinMicros)
	us = min(us, histMaxMicros)
	_ = h.RecordValue(us)
}

// tally is what one workload operation observed; the operation fills it
// without locking and hands it to stats.add once.
type tally struct {
	latencies          [2]time.Duration // one per HTTP request (a two-phase pair sends two)
	nlat               int
	acked              int64 // transfers acknowledged with a 2xx
	reads              int64 // successful reads (mixed)
	overdrafts         int64 // deliberate overdrafts sent
	overdraftsAccepted int64 // … that the server accepted: a broken min_balance
	outcomes           []outcome
}

// outcome counts a rejection or an error under its "status/code" key.
type outcome struct {
	key      string
	n        int64
	rejected bool // an expected business rejection (insufficient_funds), not an error
}

func (t *tally) latency(d time.Duration) {
	if t.nlat < len(t.latencies) {
		t.latencies[t.nlat] = d
		t.nlat++
	}
}

func (t *tally) reject(key string, n int64) {
	t.outcomes = append(t.outcomes, outcome{key: key, n: n, rejected: true})
}

func (t *tally) fail(key string, n int64) {
	t.outcomes = append(t.outcomes, outcome{key: key, n: n})
}

// stats aggregates every operation of a run. The measured part (after
// --warmup) feeds the final report; every part feeds the once-a-second live
// line, whose interval histogram is reset at each tick.
type stats struct {
	mu sync.Mutex

	interval         *hdrhistogram.Histogram
	intervalRequests int64
	intervalAcked    int64
	allErrors        map[string]int64

	latency  *hdrhistogram.Histogram
	requests int64
	acked    int64
	reads    int64
	rejected map[string]int64
	errors   map[string]int64

	overdrafts         int64
	overdraftsAccepted int64
}

func newStats() *stats {
	return &stats{
		interval:  newHistogram(),
		allErrors: map[string]int64{},
		latency:   newHistogram(),
		rejected:  map[string]int64{},
		errors:    map[string]int64{},
	}
}

// add merges one operation's tally; measured is false during warmup.
func (s *stats) add(measured bool, t *tally) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range t.latencies[:t.nlat] {
		recordLatency(s.interval, d)
		if measured {
			recordLatency(s.latency, d)
		}
	}
	s.intervalRequests += int64(t.nlat)
	s.intervalAcked += t.acked
	s.overdrafts += t.overdrafts
	s.overdraftsAccepted += t.overdraftsAccepted
	for _, o := range t.outcomes {
		if !o.rejected {
			s.allErrors[o.key] += o.n
		}
	}
	if !measured {
		return
	}
	s.requests += int64(t.nlat)
	s.acked += t.acked
	s.reads += t.reads
	for _, o := range t.outcomes {
		if o.rejected {
			s.rejected[o.key] += o.n
		} else {
			s.errors[o.key] += o.n
		}
	}
}

// liveLine renders the last interval and resets it: elapsed time, rates in
// the interval, its p50/p99, the cumulative errors, and for an open loop the
// backlog of operations that are due but not yet started.
func (s *stats) liveLine(elapsed, interval time.Duration, warmup bool, backlog int64, open bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := interval.Seconds()
	if secs <= 0 {
		secs = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%6.1fs]", elapsed.Seconds())
	if warmup {
		b.WriteString(" warmup")
	}
	fmt.Fprintf(&b, " %8.0f transfers/s %8.0f req/s  p50 %7.2fms  p99 %7.2fms",
		float64(s.intervalAcked)/secs, float64(s.intervalRequests)/secs,
		micros(s.interval.ValueAtQuantile(50)), micros(s.interval.ValueAtQuantile(99)))
	if open {
		fmt.Fprintf(&b, "  backlog %d", backlog)
	}
	b.WriteString("  errors: ")
	b.WriteString(formatCounts(s.allErrors))
	s.interval.Reset()
	s.intervalRequests, s.intervalAcked = 0, 0
	return b.String()
}

// micros converts a histogram value (µs) to milliseconds.
func micros(v int64) float64 { return float64(v) / 1000 }

// formatCounts renders a code table as "a=1 b=2" in key order, or "none".
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}
