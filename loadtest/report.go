package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// report is the result of a run, printed as text or, with --json, as one
// JSON object that scripts (bench/) can keep and compare. Only the measured
// part of the run (after --warmup) is in the figures; the check covers
// everything the run did.
type report struct {
	URL             string           `json:"url"`
	Ledger          string           `json:"ledger"`
	Workload        string           `json:"workload"`
	Path            string           `json:"path,omitempty"` // --workload get: the path requested
	Mode            string           `json:"mode"`
	Clients         int              `json:"clients"`        // closed loop: clients; open loop: in-flight cap
	Rate            float64          `json:"rate,omitempty"` // open loop: offered operations per second
	BatchSize       int              `json:"batch_size,omitempty"`
	Accounts        int              `json:"accounts"`
	Zipf            float64          `json:"zipf"`
	Seed            uint64           `json:"seed"`
	WarmupSeconds   float64          `json:"warmup_seconds"`
	DurationSeconds float64          `json:"duration_seconds"` // measured wall time
	Requests        int64            `json:"requests"`
	Transfers       int64            `json:"transfers_acknowledged"`
	Reads           int64            `json:"reads,omitempty"`
	Rejected        map[string]int64 `json:"rejected"`
	Errors          map[string]int64 `json:"errors"`
	Throughput      float64          `json:"throughput_transfers_per_second"`
	RequestRate     float64          `json:"requests_per_second"`
	Latency         latencyReport    `json:"latency_ms"`
	Overdrafts      overdraftReport  `json:"overdrafts"`
	Backlog         *backlogReport   `json:"backlog,omitempty"`
	InDoubt         settlement       `json:"in_doubt"`
	Check           checkReport      `json:"check"`
}

// latencyReport holds per-request latency percentiles in milliseconds.
type latencyReport struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func latencyOf(h *hdrhistogram.Histogram) latencyReport {
	return latencyReport{
		Count: h.TotalCount(),
		P50:   micros(h.ValueAtQuantile(50)),
		P90:   micros(h.ValueAtQuantile(90)),
		P99:   micros(h.ValueAtQuantile(99)),
		P999:  micros(h.ValueAtQuantile(99.9)),
		Max:   micros(h.Max()),
	}
}

// overdraftReport counts the deliberate overdrafts of the whole run
// (warmup included): every one must be refused with insufficient_funds.
type overdraftReport struct {
	Sent     int64 `json:"sent"`
	Accepted int64 `json:"accepted"`
}

// backlogReport says how far an open loop fell behind its schedule.
type backlogReport struct {
	Max        int64 `json:"max"`         // most operations due but not yet started at once
	LateStarts int64 `json:"late_starts"` // operations started one interval or more after they were due
}

// Check statuses.
const (
	checkPassed  = "passed"
	checkFailed  = "failed"
	checkSkipped = "skipped"
	checkError   = "error"
)

type checkReport struct {
	Status  string        `json:"status"`
	Results []checkResult `json:"results,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// writeJSON prints the report as one JSON object and a newline.
func (r *report) writeJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// writeText prints the report for people.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	loop := fmt.Sprintf("closed loop, %d clients", r.Clients)
	if r.Mode == modeOpen {
		loop = fmt.Sprintf("open loop, %g ops/s offered, at most %d in flight", r.Rate, r.Clients)
	}
	choice := "uniform"
	if r.Zipf > 0 {
		choice = fmt.Sprintf("zipf s=%g", r.Zipf)
	}
	workload := r.Workload
	if r.BatchSize > 0 {
		workload = fmt.Sprintf("%s (%d per request)", r.Workload, r.BatchSize)
	}
	if r.Workload == workloadGet {
		fmt.Fprintf(&b, "workload     get %s, %s\n", r.Path, loop)
		fmt.Fprintf(&b, "target       %s\n", r.URL)
	} else {
		fmt.Fprintf(&b, "workload     %s, %s, %d accounts %s\n", workload, loop, r.Accounts, choice)
		fmt.Fprintf(&b, "target       %s ledger %s (seed %d)\n", r.URL, r.Ledger, r.Seed)
	}
	fmt.Fprintf(&b, "duration     %.2fs measured, after %s warmup\n", r.DurationSeconds, time.Duration(r.WarmupSeconds*float64(time.Second)))
	fmt.Fprintf(&b, "requests     %d (%.1f/s)\n", r.Requests, r.RequestRate)
	get := r.Workload == workloadGet
	if !get {
		fmt.Fprintf(&b, "transfers    %d acknowledged, %.1f/s\n", r.Transfers, r.Throughput)
	}
	if r.Reads > 0 {
		fmt.Fprintf(&b, "reads        %d\n", r.Reads)
	}
	fmt.Fprintf(&b, "rejected     %s\n", formatCounts(r.Rejected))
	fmt.Fprintf(&b, "errors       %s\n", formatCounts(r.Errors))
	l := r.Latency
	fmt.Fprintf(&b, "latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%d requests)\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
	if o := r.Overdrafts; o.Accepted > 0 {
		fmt.Fprintf(&b, "overdrafts   %d of %d deliberate overdrafts ACCEPTED\n", o.Accepted, o.Sent)
	} else if !get {
		fmt.Fprintf(&b, "overdrafts   %d sent deliberately, all rejected\n", o.Sent)
	}
	if r.Backlog != nil {
		fmt.Fprintf(&b, "backlog      max %d operations, %d late starts\n", r.Backlog.Max, r.Backlog.LateStarts)
	}
	if d := r.InDoubt; d.FollowUps > 0 || d.Unresolved > 0 {
		fmt.Fprintf(&b, "in doubt     %d settled after the run: %d transactions created, %d unresolved\n", d.FollowUps, d.Created, d.Unresolved)
	}
	fmt.Fprintf(&b, "check        %s", r.Check.Status)
	if r.Check.Error != "" {
		fmt.Fprintf(&b, ": %s", r.Check.Error)
	}
	b.WriteByte('\n')
	for _, c := range r.Check.Results {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-20s %s\n", mark, c.Name, c.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
