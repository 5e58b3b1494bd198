package loadtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReport() *report {
	st := newStats()
	for i := range 1000 {
		var tl tally
		tl.latency(time.Duration(i+1) * time.Millisecond / 10) // 0.1 .. 100 ms
		tl.acked = 1
		if i == 0 {
			tl.acked = 0
			tl.reject("422/insufficient_funds", 1)
		}
		if i == 1 {
			tl.fail("503/overloaded", 1)
		}
		st.add(true, &tl)
	}
	st.add(false, &tally{acked: 1000}) // warmup: not in the report
	cfg := config{URL: "http://h", Ledger: "l", Workload: workloadTransfer, Mode: modeClosed, Clients: 64, Accounts: 10000, Seed: 5, Warmup: time.Second}
	rep := buildReport(cfg, st, 2*time.Second)
	rep.Check = checkReport{Status: checkFailed, Results: []checkResult{
		{"double_entry", true, "fine"},
		{"transaction_count", false, "off by one"},
	}}
	return rep
}

func TestBuildReport(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	if rep.Requests != 1000 || rep.Transfers != 999 {
		t.Errorf("requests %d transfers %d, want 1000 and 999", rep.Requests, rep.Transfers)
	}
	if rep.Throughput != 499.5 || rep.RequestRate != 500 {
		t.Errorf("throughput %v, request rate %v", rep.Throughput, rep.RequestRate)
	}
	l := rep.Latency
	if l.Count != 1000 || l.P50 < 49.9 || l.P50 > 50.1 || l.P99 < 98.9 || l.P99 > 99.1 || l.Max < 99.9 || l.Max > 100.1 {
		t.Errorf("latency %+v", l)
	}
}

func TestReport_text(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sampleReport().writeText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"workload     transfer, closed loop, 64 clients, 10000 accounts uniform\n",
		"duration     2.00s measured, after 1s warmup\n",
		"requests     1000 (500.0/s)\n",
		"transfers    999 acknowledged, 499.5/s\n",
		"rejected     422/insufficient_funds=1\n",
		"errors       503/overloaded=1\n",
		"latency ms   p50 50.015  p90 90.047  p99 99.007  p99.9 99.903  max 100.031  (1000 requests)\n",
		"overdrafts   0 sent deliberately, all rejected\n",
		"check        failed\n",
		"  ok   double_entry         fine\n",
		"  FAIL transaction_count    off by one\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "backlog") || strings.Contains(b.String(), "in doubt") {
		t.Errorf("closed loop without follow-ups shows backlog or in-doubt lines:\n%s", b.String())
	}
}

func TestReport_json(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	rep.Mode, rep.Rate, rep.Backlog = modeOpen, 2000, &backlogReport{Max: 3, LateStarts: 1}
	var b bytes.Buffer
	if err := rep.writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("want one line, got %q", b.String())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "mode", "clients", "rate", "duration_seconds", "requests", "transfers_acknowledged",
		"rejected", "errors", "overdrafts", "throughput_transfers_per_second", "latency_ms", "backlog", "in_doubt", "check"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	lat := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

func TestFormatCounts(t *testing.T) {
	t.Parallel()
	if got := formatCounts(nil); got != "none" {
		t.Errorf("formatCounts(nil) = %q", got)
	}
	if got := formatCounts(map[string]int64{"timeout": 2, "503/overloaded": 1}); got != "503/overloaded=1 timeout=2" {
		t.Errorf("formatCounts = %q", got)
	}
}

func TestLiveLine(t *testing.T) {
	t.Parallel()
	st := newStats()
	tl := tally{acked: 1}
	tl.latency(2 * time.Millisecond)
	tl.fail("timeout", 1)
	st.add(false, &tl)
	line := st.liveLine(3*time.Second, time.Second, true, 4, true)
	for _, want := range []string{"[   3.0s] warmup", "1 transfers/s", "1 req/s", "p50    2.00ms", "backlog 4", "errors: timeout=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("live line %q lacks %q", line, want)
		}
	}
	// The interval resets, the error table does not.
	line = st.liveLine(4*time.Second, time.Second, false, 0, false)
	if !strings.Contains(line, " 0 transfers/s") || !strings.Contains(line, "timeout=1") || strings.Contains(line, "backlog") {
		t.Errorf("second live line %q", line)
	}
}

func TestCountResult(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		last int64
		in   checkInput
		ok   bool
	}{
		{"exact", 150, checkInput{baseline: 100, created: 50}, true},
		{"one_missing", 149, checkInput{baseline: 100, created: 50}, false},
		{"one_extra", 151, checkInput{baseline: 100, created: 50}, false},
		{"within_doubt", 152, checkInput{baseline: 100, created: 50, unresolved: 2}, true},
		{"beyond_doubt", 153, checkInput{baseline: 100, created: 50, unresolved: 2}, false},
		{"below_doubt", 149, checkInput{baseline: 100, created: 50, unresolved: 2}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := countResult(tt.last, tt.in); r.OK != tt.ok {
				t.Errorf("countResult = %+v, want ok=%v", r, tt.ok)
			}
		})
	}
}
