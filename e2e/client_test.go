package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// client speaks to one API node with one key.
type client struct {
	base string // http://host:port
	key  string
	hc   *http.Client
}

// newHTTPClient is shared by the clients of a test. Requests are bounded so
// that a hung server fails the test instead of hanging it; a timeout counts
// as "no answer" and is retried with the same Idempotency-Key.
func newHTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// reply is a complete answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) replayed() bool { return r.header.Get("Idempotent-Replayed") == "true" }

// problem decodes an error answer.
func (r *reply) problem() problemJSON {
	var p problemJSON
	_ = json.Unmarshal(r.body, &p)
	return p
}

func (r *reply) String() string {
	b := r.body
	if len(b) > 512 {
		b = b[:512]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}

// do sends one request. idemKey, when set, goes in the Idempotency-Key
// header. An error means no (complete) answer arrived.
func (c *client) do(ctx context.Context, method, path string, body []byte, idemKey string) (*reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// indefinite reports whether an attempt left the outcome open: no answer,
// or 503 overloaded (which docs/api.md makes safe to retry with the same key).
func indefinite(r *reply, err error) bool {
	return err != nil || r.status == http.StatusServiceUnavailable
}

// send repeats a write with the same Idempotency-Key and body until it
// gets a definite answer (anything but a transport error or 503), or ctx
// ends. seen, when set, is told of every attempt.
func (c *client) send(ctx context.Context, path string, body []byte, idemKey string, seen func(*reply, error)) (r *reply, attempts int, err error) {
	backoff := 10 * time.Millisecond
	for {
		attempts++
		r, err = c.do(ctx, http.MethodPost, path, body, idemKey)
		if seen != nil && ctx.Err() == nil {
			seen(r, err)
		}
		if !indefinite(r, err) {
			return r, attempts, nil
		}
		if ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("still %s", r)
			}
			return nil, attempts, fmt.Errorf("no definite answer after %d attempts: %w", attempts, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// getJSON reads a resource into v, riding out a node or database that is
// coming back (transport errors, 503) for a while. Anything else but 200
// fails the test.
func (c *client) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		r, err := c.do(ctx, http.MethodGet, path, nil, "")
		if !indefinite(r, err) {
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: %s", path, r)
			}
			if err := json.Unmarshal(r.body, v); err != nil {
				t.Fatalf("GET %s: decode: %v", path, err)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("GET %s: no answer: %v %v", path, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postJSON sends a setup request and requires the status.
func (c *client) postJSON(t testing.TB, path string, body any, want int, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.do(t.Context(), http.MethodPost, path, b, "")
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	if r.status != want {
		t.Fatalf("POST %s: got %s, want %d", path, r, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("POST %s: decode: %v", path, err)
		}
	}
}

// Wire types (docs/api.md).

type postingJSON struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Amount      int64  `json:"amount"`
	Asset       string `json:"asset"`
}

// txRequest is a transaction request; IdempotencyKey is only set for
// batch items (a single request carries its key in the header).
type txRequest struct {
	Postings       []postingJSON `json:"postings"`
	Reference      string        `json:"reference,omitempty"`
	IdempotencyKey string        `json:"idempotency_key,omitempty"`
}

type txJSON struct {
	ID         string            `json:"id"`
	Sequence   int64             `json:"sequence"`
	Status     string            `json:"status"`
	Postings   []postingJSON     `json:"postings"`
	Metadata   map[string]string `json:"metadata"`
	Reference  *string           `json:"reference"`
	CreatedAt  time.Time         `json:"created_at"`
	PendingID  string            `json:"pending_id"`
	ResolvedBy string            `json:"resolved_by"`
	Reverses   string            `json:"reverses"`
	ReversedBy string            `json:"reversed_by"`
}

func (tx *txJSON) ref() string {
	if tx.Reference == nil {
		return ""
	}
	return *tx.Reference
}

type accountJSON struct {
	ID         string `json:"id"`
	Asset      string `json:"asset"`
	MinBalance *int64 `json:"min_balance"`
	Balance    struct {
		Posted         int64 `json:"posted"`
		PendingDebits  int64 `json:"pending_debits"`
		PendingCredits int64 `json:"pending_credits"`
		Available      int64 `json:"available"`
	} `json:"balance"`
	Version int64 `json:"version"`
}

type ledgerJSON struct {
	Name         string `json:"name"`
	LastSequence int64  `json:"last_sequence"`
}

type problemJSON struct {
	Status        int    `json:"status"`
	Code          string `json:"code"`
	Detail        string `json:"detail"`
	TransactionID string `json:"transaction_id"`
	Index         *int   `json:"index"`
}

type batchResultJSON struct {
	Status      int          `json:"status"`
	Transaction *txJSON      `json:"transaction"`
	Error       *problemJSON `json:"error"`
	Replayed    bool         `json:"replayed"`
}

type batchReplyJSON struct {
	Results []batchResultJSON `json:"results"`
}

func txPath(ledger string) string    { return "/v1/ledgers/" + ledger + "/transactions" }
func batchPath(ledger string) string { return "/v1/ledgers/" + ledger + "/transactions/batch" }

// statusLog counts every answer of a test by status, and keeps the first
// answers of the statuses that must never occur.
type statusLog struct {
	mu       sync.Mutex
	counts   map[string]int
	failures []string
}

func (s *statusLog) add(r *reply, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]int{}
	}
	switch {
	case err != nil:
		s.counts["transport error"]++
	case r.status >= 500 && r.status != http.StatusServiceUnavailable:
		s.counts[fmt.Sprint(r.status)]++
		if len(s.failures) < 10 {
			s.failures = append(s.failures, r.String())
		}
	default:
		k := fmt.Sprint(r.status)
		if r.status >= 400 {
			k += " " + r.problem().Code
		}
		s.counts[k]++
	}
}

func (s *statusLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for k, v := range s.counts {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	return strings.Join(parts, ", ")
}

// errorf reports at most a few errors of a kind, so that one systematic
// failure among thousands of requests stays readable. Safe for concurrent
// use while the test runs.
type errorf struct {
	t testing.TB
	n atomic.Int32
}

func (e *errorf) Errorf(format string, args ...any) {
	e.t.Helper()
	switch n := e.n.Add(1); {
	case n <= 20:
		e.t.Errorf(format, args...)
	case n == 21:
		e.t.Errorf("(more errors suppressed)")
	}
}
