package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runMain runs Main against srv with small, bounded settings plus extra
// flags, and decodes its --json report.
func runMain(t *testing.T, f *fakeServer, url string, extra ...string) (report, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := append([]string{
		"--url", url, "--ledger", "lt-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())),
		"--accounts", "40", "--initial", "10000", "--clients", "4",
		"--duration", "1s", "--requests", "200", "--seed", "7",
		"--reject-ratio", "0.05", "--timeout", "2s", "--json",
	}, extra...)
	getenv := func(k string) string {
		if k == "LEDGERD_ADMIN_KEY" {
			return f.key
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := Main(ctx, args, getenv, &stdout, &stderr)
	var rep report
	if stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
			t.Fatalf("report is not JSON: %v\n%s", jerr, stdout.String())
		}
	}
	return rep, stderr.String(), err
}

func checkNamed(rep report, name string) (checkResult, bool) {
	for _, c := range rep.Check.Results {
		if c.Name == name {
			return c, true
		}
	}
	return checkResult{}, false
}

func TestMain_workloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		args          []string
		wantRequests  int64
		wantTransfers func(int64) bool
	}{
		{"transfer", []string{"--workload", "transfer"}, 200, func(n int64) bool { return n > 150 && n <= 200 }},
		{"transfer_zipf", []string{"--workload", "transfer", "--zipf", "1.1"}, 200, func(n int64) bool { return n > 150 && n <= 200 }},
		{"batch", []string{"--workload", "batch", "--batch-size", "50", "--requests", "10"}, 10, func(n int64) bool { return n > 400 && n <= 500 }},
		{"mixed", []string{"--workload", "mixed", "--read-ratio", "0.5"}, 200, func(n int64) bool { return n > 50 && n < 150 }},
		{"twophase", []string{"--workload", "twophase"}, -1, func(n int64) bool { return n > 150 && n <= 200 }},
		{"open_loop", []string{"--mode", "open", "--rate", "500", "--clients", "8"}, 200, func(n int64) bool { return n > 150 && n <= 200 }},
		{"warmup", []string{"--warmup", "200ms", "--requests", "0", "--duration", "300ms"}, -1, func(n int64) bool { return n > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{}
			srv := newFakeServer(t, f)
			rep, stderr, err := runMain(t, f, srv.URL, tt.args...)
			if err != nil {
				t.Fatalf("Main: %v\nstderr:\n%s", err, stderr)
			}
			if rep.Check.Status != checkPassed {
				t.Errorf("check %s: %+v", rep.Check.Status, rep.Check.Results)
			}
			if len(rep.Check.Results) != 4 {
				t.Errorf("want 4 check results, got %+v", rep.Check.Results)
			}
			if tt.wantRequests >= 0 && rep.Requests != tt.wantRequests {
				t.Errorf("requests = %d, want %d", rep.Requests, tt.wantRequests)
			}
			if !tt.wantTransfers(rep.Transfers) {
				t.Errorf("transfers acknowledged = %d: out of the expected range", rep.Transfers)
			}
			if len(rep.Errors) != 0 {
				t.Errorf("errors: %v", rep.Errors)
			}
			if rep.Latency.Count != rep.Requests {
				t.Errorf("latency count %d != requests %d", rep.Latency.Count, rep.Requests)
			}
			if !strings.Contains(stderr, "setup: ledger") {
				t.Errorf("no setup line on stderr:\n%s", stderr)
			}
		})
	}
}

func TestMain_rejectsDeliberateOverdrafts(t *testing.T) {
	t.Parallel()
	f := &fakeServer{}
	srv := newFakeServer(t, f)
	rep, _, err := runMain(t, f, srv.URL, "--reject-ratio", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Rejected["422/insufficient_funds"]; n < 50 {
		t.Errorf("rejected %v: want about 100 insufficient_funds", rep.Rejected)
	}
	if c, _ := checkNamed(rep, "overdrafts_rejected"); !c.OK {
		t.Errorf("overdrafts check: %+v", c)
	}
}

func TestMain_checkFailsOnBrokenServer(t *testing.T) {
	t.Parallel()
	f := &fakeServer{skipDebitEvery: 7}
	srv := newFakeServer(t, f)
	rep, _, err := runMain(t, f, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "correctness check failed") {
		t.Fatalf("Main = %v, want a failed check", err)
	}
	if rep.Check.Status != checkFailed {
		t.Errorf("check status %q", rep.Check.Status)
	}
	c, ok := checkNamed(rep, "double_entry")
	if !ok || c.OK || !strings.Contains(c.Detail, "USD sums to") {
		t.Errorf("double_entry: %+v", c)
	}
	if c, _ := checkNamed(rep, "transaction_count"); !c.OK {
		t.Errorf("transaction_count should still pass: %+v", c)
	}
}

// A request that commits but answers after the client gave up is retried
// with its key after the run; the replay makes the count exact again.
func TestMain_inDoubtRequestIsSettled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, route string
		args        []string
		created     int64
	}{
		{"transfer", "transactions", nil, 1},
		{"hold", "transactions", []string{"--workload", "twophase"}, 2}, // the hold, and its void after the run
		{"capture", "post", []string{"--workload", "twophase"}, 1},
		{"batch", "batch", []string{"--workload", "batch", "--batch-size", "20", "--requests", "5"}, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{slowRoute: tt.route, slowNth: 3, slowDelay: 2 * time.Second}
			srv := newFakeServer(t, f)
			// A run bounded by its request count, not by time, and a timeout
			// far from both the slow answer and an ordinary one on a loaded
			// machine: the counts below are then exact.
			rep, stderr, err := runMain(t, f, srv.URL, append([]string{"--duration", "25s", "--timeout", "1s", "--reject-ratio", "0"}, tt.args...)...)
			if err != nil {
				t.Fatalf("Main: %v\n%s", err, stderr)
			}
			if rep.Errors["timeout"] == 0 {
				t.Errorf("errors %v: want a timeout", rep.Errors)
			}
			if rep.InDoubt.FollowUps != 1 || rep.InDoubt.Created != tt.created || rep.InDoubt.Unresolved != 0 {
				t.Errorf("in doubt %+v: want 1 follow-up that created %d", rep.InDoubt, tt.created)
			}
			if c, _ := checkNamed(rep, "transaction_count"); !c.OK || strings.Contains(c.Detail, "not exact") {
				t.Errorf("transaction_count: %+v", c)
			}
		})
	}
}

// A capture that fails leaves a hold pending; it is voided after the run.
func TestMain_failedCaptureIsVoided(t *testing.T) {
	t.Parallel()
	f := &fakeServer{failCaptureEvery: 10}
	srv := newFakeServer(t, f)
	rep, stderr, err := runMain(t, f, srv.URL, "--workload", "twophase", "--reject-ratio", "0", "--duration", "25s") // 200 requests, however slow the machine
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr)
	}
	if rep.Errors["429/rate_limited"] != 10 {
		t.Errorf("errors %v: want 10 rate_limited captures", rep.Errors)
	}
	if rep.InDoubt.FollowUps != 10 || rep.InDoubt.Created != 10 {
		t.Errorf("in doubt %+v: want 10 voids", rep.InDoubt)
	}
	if rep.Check.Status != checkPassed {
		t.Errorf("check: %+v", rep.Check)
	}
}

func TestMain_reuse(t *testing.T) {
	t.Parallel()
	f := &fakeServer{}
	srv := newFakeServer(t, f)
	if _, _, err := runMain(t, f, srv.URL); err != nil {
		t.Fatal(err)
	}
	_, _, err := runMain(t, f, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "--reuse") {
		t.Fatalf("second setup of the same ledger: %v, want a hint to --reuse", err)
	}
	rep, _, err := runMain(t, f, srv.URL, "--reuse")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Check.Status != checkPassed {
		t.Errorf("check after reuse: %+v", rep.Check)
	}
	_, _, err = runMain(t, f, srv.URL, "--reuse", "--accounts", "41")
	if err == nil || !strings.Contains(err.Error(), "acct:000040") {
		t.Errorf("reuse with more accounts than exist: %v", err)
	}
}

func TestMain_noCheckAndTextReport(t *testing.T) {
	t.Parallel()
	f := &fakeServer{skipDebitEvery: 3}
	srv := newFakeServer(t, f)
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	err := Main(t.Context(), []string{"--url", srv.URL, "--key", f.key, "--accounts", "10", "--requests", "50", "--clients", "2", "--no-check"}, getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"workload     transfer, closed loop, 2 clients", "latency ms", "check        skipped"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestMain_wrongKey(t *testing.T) {
	t.Parallel()
	f := &fakeServer{}
	srv := newFakeServer(t, f)
	var stdout, stderr bytes.Buffer
	err := Main(t.Context(), []string{"--url", srv.URL, "--key", "wrong", "--accounts", "10", "--requests", "10"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "bootstrap admin key") {
		t.Fatalf("Main = %v, want a hint about the key", err)
	}
}

func TestMain_help(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := Main(t.Context(), []string{"--help"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"url", "key", "ledger", "reuse", "accounts", "asset", "initial", "mode", "clients", "rate",
		"duration", "requests", "warmup", "workload", "batch-size", "zipf", "read-ratio", "reference-ratio", "reject-ratio",
		"json", "no-check", "timeout", "seed", "path", "cpuprofile", "LEDGERD_URL", "LEDGERD_ADMIN_KEY"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("--help does not mention %q", flag)
		}
	}
}

// The get workload sends nothing but GETs of --path: no setup, no check, no
// Authorization header without a key.
func TestMain_get(t *testing.T) {
	t.Parallel()
	var hits, other, authed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.RequestURI() != "/hello?x=1" {
			other.Add(1)
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			authed.Add(1)
		}
		hits.Add(1)
		_, _ = w.Write([]byte("hello\n"))
	}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	err := Main(t.Context(), []string{"--url", srv.URL, "--workload", "get", "--path", "/hello?x=1",
		"--clients", "4", "--requests", "100", "--duration", "0", "--json"}, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if rep.Requests != 100 || rep.Reads != 100 || rep.Transfers != 0 || len(rep.Errors) != 0 {
		t.Errorf("report: requests %d reads %d transfers %d errors %v", rep.Requests, rep.Reads, rep.Transfers, rep.Errors)
	}
	if rep.Check.Status != checkSkipped || rep.Path != "/hello?x=1" || rep.RequestRate <= 0 {
		t.Errorf("report: check %q path %q rate %v", rep.Check.Status, rep.Path, rep.RequestRate)
	}
	if hits.Load() != 100 || other.Load() != 0 || authed.Load() != 0 {
		t.Errorf("server saw %d GETs of the path, %d other requests, %d with Authorization", hits.Load(), other.Load(), authed.Load())
	}
}

// --cpuprofile writes a profile of the run that go tool pprof can read.
func TestMain_cpuprofile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	var stdout, stderr bytes.Buffer
	err := Main(t.Context(), []string{"--url", srv.URL, "--workload", "get", "--clients", "2", "--requests", "20", "--duration", "0",
		"--cpuprofile", path}, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // a gzipped protobuf
		t.Fatalf("profile %q: %v", b[:min(len(b), 8)], err)
	}
}
