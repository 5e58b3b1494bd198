package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/webhook"
)

// hookReceiver verifies every request as a Standard Webhooks library
// does and counts accepted deliveries per webhook-id. Every failEvery-th
// request is answered 500, so retries happen all along.
type hookReceiver struct {
	srv       *httptest.Server
	failEvery int64
	secret    atomic.Value // string
	n         atomic.Int64
	mu        sync.Mutex
	got       map[string]int
	bad       int
}

func newHookReceiver(t *testing.T, failEvery int64) *hookReceiver {
	r := &hookReceiver{failEvery: failEvery, got: map[string]int{}}
	r.secret.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if n := r.n.Add(1); r.failEvery > 0 && n%r.failEvery == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if err := webhook.Verify([]string{r.secret.Load().(string)}, req.Header, body, webhook.DefaultTolerance); err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got[req.Header.Get(webhook.HeaderID)]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) counts() (got map[string]int, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got = make(map[string]int, len(r.got))
	for k, v := range r.got {
		got[k] = v
	}
	return got, r.bad
}

// startWorkerProc runs `ledgerd worker` against dbURL and waits (bounded)
// for it to say it runs. It is stopped when the test ends, and its log
// checked for data races, like a serve node.
func startWorkerProc(t *testing.T, bin, name, dbURL string, env ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, bin: bin, logPath: filepath.Join(t.TempDir(), name+".log")}
	n.env = append(os.Environ(), "DATABASE_URL="+dbURL, "LEDGERD_WORKER_DEBUG_ADDR=", "GORACE=halt_on_error=0")
	n.env = append(n.env, env...)
	t.Cleanup(n.cleanup)
	n.startWorker()
	return n
}

func (n *node) startWorker() {
	n.t.Helper()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(n.bin, "worker")
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		n.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(n.logPath)
		if bytes.Count(b, []byte(`"worker running"`)) > n.starts {
			n.starts++
			return
		}
		select {
		case <-done:
			n.t.Fatalf("%s exited during startup: %s", n.name, n.lastLines(3))
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: not running after 60 s", n.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tailFixture is a ledger with two endpoints on one serve node without
// workers: one takes every event, one only transaction.posted.
type tailFixture struct {
	t        *testing.T
	api      string
	ledger   string
	all, few *hookReceiver
	allID    string
	fewID    string
	hc       *http.Client
}

func (f *tailFixture) do(method, path string, body any, want int) map[string]any {
	f.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, f.api+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+ledgertest.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return m
}

func newTailFixture(t *testing.T, api, ledger string, failEvery int64) *tailFixture {
	f := &tailFixture{t: t, api: api, ledger: ledger, hc: &http.Client{Timeout: 30 * time.Second}}
	f.do("POST", "/v1/ledgers", map[string]any{"name": ledger}, 201)
	for _, a := range []string{"world", "a"} {
		f.do("POST", "/v1/ledgers/"+ledger+"/accounts", map[string]any{"id": a, "asset": "USD", "min_balance": nil}, 201)
	}
	f.all, f.few = newHookReceiver(t, failEvery), newHookReceiver(t, failEvery)
	m := f.do("POST", "/v1/ledgers/"+ledger+"/webhooks", map[string]any{"url": f.all.srv.URL + "/all"}, 201)
	f.allID = m["id"].(string)
	f.all.secret.Store(m["secret"].(string))
	m = f.do("POST", "/v1/ledgers/"+ledger+"/webhooks", map[string]any{"url": f.few.srv.URL + "/few",
		"event_types": []string{"transaction.posted"}}, 201)
	f.fewID = m["id"].(string)
	f.few.secret.Store(m["secret"].(string))
	return f
}

// load posts transfers and holds from a few clients until stop is closed
// and returns the event ids of every committed transaction, and of the
// posted ones (holds are transaction.pending).
func (f *tailFixture) load(stop <-chan struct{}, clients int) (all, posted []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var bad atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				hold := (i+c)%4 == 0
				body := map[string]any{"postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}},
					"pending": hold}
				b, _ := json.Marshal(body)
				req, _ := http.NewRequest("POST", f.api+"/v1/ledgers/"+f.ledger+"/transactions", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+ledgertest.AdminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := f.hc.Do(req)
				if err != nil {
					continue // the API node is never killed here; count only what committed
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					if bad.Add(1) == 1 {
						f.t.Logf("a transaction was refused: %d %s", resp.StatusCode, out)
					}
					continue
				}
				var m map[string]any
				_ = json.Unmarshal(out, &m)
				id := "evt_" + fmt.Sprint(m["id"])
				mu.Lock()
				all = append(all, id)
				if !hold {
					posted = append(posted, id)
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return all, posted
}

// deadLetters reads the endpoint's failed deliveries from the database.
func deadLetters(t *testing.T, dbURL, endpoint string) map[string]bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed'`, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// accounted waits (bounded) until every event in want was received by r
// or is a dead letter of its endpoint, then reports what is missing.
func (f *tailFixture) accounted(r *hookReceiver, dbURL, endpoint string, want []string, timeout time.Duration) (missing []string, dups, dead int) {
	deadline := time.Now().Add(timeout)
	for {
		got, _ := r.counts()
		dl := deadLetters(f.t, dbURL, endpoint)
		missing, dups, dead = missing[:0], 0, 0
		for _, id := range want {
			switch {
			case got[id] > 0:
				dups += got[id] - 1
			case dl[id]:
				dead++
			default:
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing, dups, dead
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const tailWorkerEnv = "LEDGERD_WEBHOOK_ALLOW_PRIVATE=true"

// TestWorkerKill9UnderLoad: the worker is killed with SIGKILL three times
// mid-delivery while transactions are posted; afterwards every committed
// transaction was received by every endpoint it matches (perhaps more than
// once, under the same webhook-id) or is a dead letter there. Counted, not
// sampled.
func TestWorkerKill9UnderLoad(t *testing.T) {
	dbURL := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	api := startNode(t, bin, "api", dbURL, tailWorkerEnv)
	f := newTailFixture(t, api.URL(), "tailkill", 7)
	env := []string{tailWorkerEnv, "LEDGERD_WEBHOOK_RETRY_SCHEDULE=200ms,200ms,500ms,1s,1s,2s",
		"LEDGERD_WEBHOOK_TIMEOUT=2s", "LEDGERD_WORKER_POLL=50ms"}
	stop := make(chan struct{})
	type result struct{ all, posted []string }
	res := make(chan result, 1)
	go func() { a, p := f.load(stop, 4); res <- result{a, p} }()

	w := startWorkerProc(t, bin, "worker", dbURL, env...)
	for round := range 3 {
		// Let deliveries flow, then kill the worker in the middle of them.
		waitUntil := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(waitUntil) {
			time.Sleep(50 * time.Millisecond)
		}
		before, _ := f.all.counts()
		w.kill9()
		t.Logf("round %d: killed the worker after %d events were received", round+1, len(before))
		time.Sleep(300 * time.Millisecond) // transactions keep committing with no worker
		w.startWorker()
	}
	time.Sleep(time.Second)
	close(stop)
	r := <-res
	if len(r.all) < 100 {
		t.Fatalf("only %d transactions committed under load", len(r.all))
	}
	// Leases of the killed workers run out after 2×2 s + 5 s.
	missing, dups, dead := f.accounted(f.all, dbURL, f.allID, r.all, 90*time.Second)
	t.Logf("every-event endpoint: %d events, %d duplicates, %d dead letters", len(r.all), dups, dead)
	if len(missing) > 0 {
		t.Errorf("every-event endpoint: %d of %d events neither received nor dead-lettered, e.g. %v", len(missing), len(r.all), missing[:min(5, len(missing))])
	}
	missing, dups, dead = f.accounted(f.few, dbURL, f.fewID, r.posted, 30*time.Second)
	t.Logf("posted-only endpoint: %d events, %d duplicates, %d dead letters", len(r.posted), dups, dead)
	if len(missing) > 0 {
		t.Errorf("posted-only endpoint: %d of %d events missing, e.g. %v", len(missing), len(r.posted), missing[:min(5, len(missing))])
	}
	got, bad := f.few.counts()
	posted := map[string]bool{}
	for _, id := range r.posted {
		posted[id] = true
	}
	for id := range got {
		if !posted[id] {
			t.Errorf("posted-only endpoint received %s, not a posted transaction", id)
		}
	}
	if _, bad2 := f.all.counts(); bad+bad2 > 0 {
		t.Errorf("%d requests failed signature verification", bad+bad2)
	}
}

// TestTwoWorkersShareTheWork: two workers on one database deliver every
// event exactly once when nothing fails (at-least-once never turns into
// "by both at once"), and both take part.
func TestTwoWorkersShareTheWork(t *testing.T) {
	dbURL := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	api := startNode(t, bin, "api", dbURL, tailWorkerEnv)
	f := newTailFixture(t, api.URL(), "tailtwo", 0)
	dbg1, dbg2 := freeAddr(t), freeAddr(t)
	env := []string{tailWorkerEnv, "LEDGERD_WORKER_POLL=50ms", "LEDGERD_WORKER_CONCURRENCY=4", "LEDGERD_WEBHOOK_PER_ENDPOINT=2"}
	startWorkerProc(t, bin, "worker1", dbURL, append(env, "LEDGERD_WORKER_DEBUG_ADDR="+dbg1)...)
	startWorkerProc(t, bin, "worker2", dbURL, append(env, "LEDGERD_WORKER_DEBUG_ADDR="+dbg2)...)
	stop := make(chan struct{})
	go func() { time.Sleep(3 * time.Second); close(stop) }()
	all, posted := f.load(stop, 4)
	for _, c := range []struct {
		r    *hookReceiver
		id   string
		want []string
	}{{f.all, f.allID, all}, {f.few, f.fewID, posted}} {
		missing, dups, dead := f.accounted(c.r, dbURL, c.id, c.want, 60*time.Second)
		if len(missing) > 0 || dups > 0 || dead > 0 {
			t.Errorf("endpoint %s: of %d events %d missing, %d duplicates, %d dead letters", c.id, len(c.want), len(missing), dups, dead)
		}
	}
	for _, addr := range []string{dbg1, dbg2} {
		n := scrapeCounter(t, "http://"+addr+"/metrics", "ledgerd_webhook_delivered_total")
		if n == 0 {
			t.Errorf("worker at %s delivered nothing: the work was not shared", addr)
		}
		t.Logf("worker at %s delivered %v", addr, n)
	}
}

func scrapeCounter(t *testing.T, url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// TestServeWithWorkers: `ledgerd serve` with LEDGERD_WORKERS=true runs the
// tail itself: with no worker process, every event reaches its endpoints.
func TestServeWithWorkers(t *testing.T) {
	dbURL := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	api := startNode(t, bin, "api", dbURL, tailWorkerEnv, "LEDGERD_WORKERS=true", "LEDGERD_WORKER_POLL=50ms")
	f := newTailFixture(t, api.URL(), "tailserve", 0)
	stop := make(chan struct{})
	go func() { time.Sleep(time.Second); close(stop) }()
	all, posted := f.load(stop, 2)
	for _, c := range []struct {
		r    *hookReceiver
		id   string
		want []string
	}{{f.all, f.allID, all}, {f.few, f.fewID, posted}} {
		missing, _, dead := f.accounted(c.r, dbURL, c.id, c.want, 30*time.Second)
		if len(missing) > 0 || dead > 0 || len(c.want) == 0 {
			t.Errorf("endpoint %s: of %d events %d missing, %d dead letters", c.id, len(c.want), len(missing), dead)
		}
	}
}

// TestTailSurvivesPostgresRestart: PostgreSQL restarts (immediate
// shutdown, then recovery) under load with a worker delivering; afterwards
// every transaction the API acknowledged reached every matching endpoint
// or is a dead letter there.
func TestTailSurvivesPostgresRestart(t *testing.T) {
	dbURL := ledgertest.NewDatabase(t)
	cluster := ledgertest.Cluster(t)
	if cluster == nil {
		t.Skip("DATABASE_URL is set: no cluster of our own to restart")
	}
	bin := buildLedgerd(t)
	api := startNode(t, bin, "api", dbURL, tailWorkerEnv)
	f := newTailFixture(t, api.URL(), "tailpgrestart", 7)
	startWorkerProc(t, bin, "worker", dbURL, tailWorkerEnv, "LEDGERD_WORKER_POLL=50ms",
		"LEDGERD_WEBHOOK_RETRY_SCHEDULE=200ms,500ms,1s,2s,2s,5s", "LEDGERD_WEBHOOK_TIMEOUT=2s")
	stop := make(chan struct{})
	type result struct{ all, posted []string }
	res := make(chan result, 1)
	go func() { a, p := f.load(stop, 4); res <- result{a, p} }()
	time.Sleep(1500 * time.Millisecond)
	before, _ := f.all.counts()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err := cluster.RestartImmediate(ctx)
	cancel()
	if err != nil {
		close(stop)
		<-res
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	t.Logf("restarted PostgreSQL after %d events were received", len(before))
	time.Sleep(3 * time.Second)
	close(stop)
	r := <-res
	for _, c := range []struct {
		r    *hookReceiver
		id   string
		want []string
	}{{f.all, f.allID, r.all}, {f.few, f.fewID, r.posted}} {
		missing, dups, dead := f.accounted(c.r, dbURL, c.id, c.want, 90*time.Second)
		t.Logf("endpoint %s: %d events, %d duplicates, %d dead letters", c.id, len(c.want), dups, dead)
		if len(missing) > 0 {
			t.Errorf("endpoint %s: %d of %d events neither received nor dead-lettered, e.g. %v", c.id, len(missing), len(c.want), missing[:min(5, len(missing))])
		}
	}
}
