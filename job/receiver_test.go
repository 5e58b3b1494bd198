package job_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/atrest"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
)

// receiver is a webhook receiver on loopback that verifies every request
// the way a Standard Webhooks library does and records what it accepted.
// Its behaviour can be switched: answer 200, a status, or hang.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	secrets  []string
	status   int                  // answer; 0: 200
	hang     time.Duration        // sleep before answering
	got      map[string]int       // webhook-id → deliveries accepted
	at       map[string]time.Time // webhook-id → first accepted
	bodies   map[string]map[string]any
	sigs     map[string]string // webhook-id → last signature header
	bad      int               // requests failing verification
	requests int
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: map[string]int{}, at: map[string]time.Time{}, bodies: map[string]map[string]any{}, sigs: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/hook" }

func (r *receiver) setSecrets(s ...string) { r.mu.Lock(); r.secrets = s; r.mu.Unlock() }
func (r *receiver) setStatus(st int)       { r.mu.Lock(); r.status = st; r.mu.Unlock() }
func (r *receiver) setHang(d time.Duration) {
	r.mu.Lock()
	r.hang = d
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	r.requests++
	hang, status, secrets := r.hang, r.status, r.secrets
	r.mu.Unlock()
	if hang > 0 {
		select {
		case <-time.After(hang):
		case <-req.Context().Done():
			return
		}
	}
	if status != 0 && status != 200 {
		w.WriteHeader(status)
		return
	}
	if err := webhook.Verify(secrets, req.Header, body, webhook.DefaultTolerance); err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	if r.got[id] == 0 {
		r.at[id] = time.Now()
	}
	r.got[id]++
	r.bodies[id] = m
	r.sigs[id] = req.Header.Get(webhook.HeaderSignature)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ids returns the accepted webhook-ids.
func (r *receiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

func (r *receiver) badCount() int { r.mu.Lock(); defer r.mu.Unlock(); return r.bad }

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startWorker runs a tail worker on its own pool against env's database
// until the test ends.
func startWorker(t testing.TB, env *ledgertest.Env, cfg job.Config) {
	t.Helper()
	startWorkerKeys(t, env, cfg, nil)
}

// startWorkerKeys is startWorker with the keys that open the webhook
// secrets (nil: none).
func startWorkerKeys(t testing.TB, env *ledgertest.Env, cfg job.Config, keys *atrest.Keys) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := postgres.Open(ctx, postgres.Config{URL: env.DatabaseURL, MaxConns: 6, AsyncCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	db.SecretKeys = keys
	cfg.AllowPrivate = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	w := job.New(db, db, cfg)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30 s")
		}
		db.Close()
	})
}

// testWriter sends the worker's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
