package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer implements, in memory and only as far as the load generator
// uses it, the ledgerd HTTP API of docs/api.md: ledgers, account batches and
// lists, single and batch transactions with idempotency, holds with post
// and void. Its knobs break it in the ways the generator must notice.
type fakeServer struct {
	key string

	// skipDebitEvery > 0: every n-th transaction does not debit its
	// source, so money appears from nowhere and double entry breaks.
	skipDebitEvery int64
	// slowNth > 0: the n-th request to slowRoute ("transactions", "batch"
	// or "post") is committed but answered only after slowDelay, so that
	// the client times out while in doubt.
	slowRoute string
	slowNth   int64
	slowDelay time.Duration
	slowCount atomic.Int64
	// failCaptureEvery > 0: every n-th capture is answered 429 without
	// being applied, leaving the hold pending.
	failCaptureEvery int64

	captures atomic.Int64

	mu      sync.Mutex
	ledgers map[string]*fakeLedger
}

type fakeLedger struct {
	seq        int64
	accounts   map[string]*fakeAccount
	idem       map[string]fakeStored
	references map[string]bool
	holds      map[string]*fakeHold
}

type fakeAccount struct {
	asset          string
	min            *int64
	posted         int64
	pendingDebits  int64
	pendingCredits int64
}

type fakeHold struct {
	src, dst string
	amount   int64
	open     bool
}

type fakeStored struct {
	status int
	body   []byte
}

type fakePosting struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Amount      int64  `json:"amount"`
	Asset       string `json:"asset"`
}

type fakeTxRequest struct {
	Postings       []fakePosting `json:"postings"`
	Reference      string        `json:"reference"`
	Pending        bool          `json:"pending"`
	PendingTimeout int64         `json:"pending_timeout_seconds"`
	IdempotencyKey string        `json:"idempotency_key"`
}

// newFakeServer starts f on a loopback httptest server closed with the test.
func newFakeServer(t *testing.T, f *fakeServer) *httptest.Server {
	t.Helper()
	if f.key == "" {
		f.key = "test-admin-key-0123456789abcdef0123456789"
	}
	f.ledgers = map[string]*fakeLedger{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ledgers", f.createLedger)
	mux.HandleFunc("GET /v1/ledgers/{ledger}", f.withLedger(f.getLedger))
	mux.HandleFunc("POST /v1/ledgers/{ledger}/accounts/batch", f.withLedger(f.createAccounts))
	mux.HandleFunc("GET /v1/ledgers/{ledger}/accounts", f.withLedger(f.listAccounts))
	mux.HandleFunc("GET /v1/ledgers/{ledger}/accounts/{account}", f.withLedger(f.getAccount))
	mux.HandleFunc("POST /v1/ledgers/{ledger}/transactions", f.withLedger(f.postTransaction))
	mux.HandleFunc("POST /v1/ledgers/{ledger}/transactions/batch", f.withLedger(f.postBatch))
	mux.HandleFunc("GET /v1/ledgers/{ledger}/transactions", f.withLedger(f.listTransactions))
	mux.HandleFunc("POST /v1/ledgers/{ledger}/transactions/{id}/post", f.withLedger(f.resolveHold(true)))
	mux.HandleFunc("POST /v1/ledgers/{ledger}/transactions/{id}/void", f.withLedger(f.resolveHold(false)))
	srv := httptest.NewServer(f.auth(mux))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.key {
			writeProblem(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeProblem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(problemBody(status, code))
}

func problemBody(status int, code string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": code, "status": status, "detail": code, "code": code})
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) createLedger(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || req.Name == "" {
		writeProblem(w, http.StatusUnprocessableEntity, "validation_failed")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ledgers[req.Name] != nil {
		writeProblem(w, http.StatusConflict, "duplicate_ledger")
		return
	}
	f.ledgers[req.Name] = &fakeLedger{
		accounts: map[string]*fakeAccount{}, idem: map[string]fakeStored{},
		references: map[string]bool{}, holds: map[string]*fakeHold{},
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "last_sequence": 0})
}

// withLedger resolves {ledger} and holds the server lock for the handler.
func (f *fakeServer) withLedger(h func(w http.ResponseWriter, r *http.Request, l *fakeLedger)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		l := f.ledgers[r.PathValue("ledger")]
		if l == nil {
			f.mu.Unlock()
			writeProblem(w, http.StatusNotFound, "not_found")
			return
		}
		h(w, r, l)
		f.mu.Unlock()
	}
}

func (f *fakeServer) getLedger(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("ledger"), "created_at": "2026-01-01T00:00:00.000000Z", "last_sequence": l.seq})
}

func (f *fakeServer) createAccounts(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	var req struct {
		Accounts []struct {
			ID         string          `json:"id"`
			Asset      string          `json:"asset"`
			MinBalance json.RawMessage `json:"min_balance"`
		} `json:"accounts"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || len(req.Accounts) > 1000 {
		writeProblem(w, http.StatusUnprocessableEntity, "validation_failed")
		return
	}
	var results []any
	for _, a := range req.Accounts {
		if l.accounts[a.ID] != nil {
			results = append(results, map[string]any{"status": 409, "error": json.RawMessage(problemBody(409, "duplicate_account"))})
			continue
		}
		acc := &fakeAccount{asset: a.Asset, min: new(int64)}
		if string(a.MinBalance) == "null" {
			acc.min = nil
		} else if len(a.MinBalance) > 0 {
			_ = json.Unmarshal(a.MinBalance, acc.min)
		}
		l.accounts[a.ID] = acc
		results = append(results, map[string]any{"status": 201, "account": map[string]any{"id": a.ID}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (f *fakeServer) accountJSON(id string, a *fakeAccount) map[string]any {
	return map[string]any{
		"id": id, "asset": a.asset, "min_balance": a.min,
		"balance": map[string]int64{
			"posted": a.posted, "pending_debits": a.pendingDebits, "pending_credits": a.pendingCredits,
			"available": a.posted - a.pendingDebits,
		},
	}
}

func (f *fakeServer) listAccounts(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	if limit < 1 || limit > 1000 {
		writeProblem(w, http.StatusUnprocessableEntity, "validation_failed")
		return
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range l.accounts {
			if !yield(id) {
				return
			}
		}
	})
	cursor := r.URL.Query().Get("cursor")
	i, _ := slices.BinarySearch(ids, cursor)
	if cursor != "" && i < len(ids) && ids[i] == cursor {
		i++
	}
	data := []any{}
	var next any
	for ; i < len(ids) && len(data) < limit; i++ {
		data = append(data, f.accountJSON(ids[i], l.accounts[ids[i]]))
	}
	if i < len(ids) {
		next = ids[i-1]
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": next})
}

func (f *fakeServer) getAccount(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	id := r.PathValue("account")
	a := l.accounts[id]
	if a == nil {
		writeProblem(w, http.StatusNotFound, "not_found")
		return
	}
	writeJSON(w, http.StatusOK, f.accountJSON(id, a))
}

func (f *fakeServer) listTransactions(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	writeJSON(w, http.StatusOK, map[string]any{"data": []any{}, "next_cursor": nil})
}

// apply runs one transaction request against l (lock held) and returns the
// status and body to answer, storing them under the idempotency key.
func (f *fakeServer) apply(l *fakeLedger, key string, req fakeTxRequest) (int, []byte) {
	if key != "" {
		if s, ok := l.idem[key]; ok {
			if s.status == http.StatusCreated {
				return http.StatusOK, s.body
			}
			return s.status, s.body
		}
	}
	status, body := f.applyNew(l, req)
	// Successes and business rejections are stored, validation failures not (docs/api.md).
	if key != "" && !strings.Contains(string(body), "validation_failed") {
		l.idem[key] = fakeStored{status, body}
	}
	return status, body
}

func (f *fakeServer) applyNew(l *fakeLedger, req fakeTxRequest) (int, []byte) {
	if len(req.Postings) != 1 {
		return http.StatusUnprocessableEntity, problemBody(422, "validation_failed")
	}
	p := req.Postings[0]
	src, dst := l.accounts[p.Source], l.accounts[p.Destination]
	switch {
	case p.Amount <= 0 || p.Source == p.Destination:
		return http.StatusUnprocessableEntity, problemBody(422, "validation_failed")
	case src == nil || dst == nil:
		return http.StatusUnprocessableEntity, problemBody(422, "account_not_found")
	case src.asset != p.Asset || dst.asset != p.Asset:
		return http.StatusUnprocessableEntity, problemBody(422, "asset_mismatch")
	case src.min != nil && src.posted-src.pendingDebits-p.Amount < *src.min:
		return http.StatusUnprocessableEntity, problemBody(422, "insufficient_funds")
	case req.Reference != "" && l.references[req.Reference]:
		return http.StatusConflict, problemBody(409, "duplicate_reference")
	}
	if req.Reference != "" {
		l.references[req.Reference] = true
	}
	l.seq++
	id := fmt.Sprintf("tx-%d", l.seq)
	status := "posted"
	if req.Pending {
		status = "pending"
		src.pendingDebits += p.Amount
		dst.pendingCredits += p.Amount
		l.holds[id] = &fakeHold{src: p.Source, dst: p.Destination, amount: p.Amount, open: true}
	} else {
		if f.skipDebitEvery == 0 || l.seq%f.skipDebitEvery != 0 {
			src.posted -= p.Amount
		}
		dst.posted += p.Amount
	}
	body, _ := json.Marshal(map[string]any{"id": id, "sequence": l.seq, "status": status, "postings": req.Postings})
	return http.StatusCreated, body
}

func (f *fakeServer) postTransaction(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	var req fakeTxRequest
	if json.NewDecoder(r.Body).Decode(&req) != nil {
		writeProblem(w, http.StatusBadRequest, "malformed_json")
		return
	}
	status, body := f.apply(l, r.Header.Get("Idempotency-Key"), req)
	if status == http.StatusOK {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	f.maybeStall("transactions", r)
	w.Header().Set("Content-Type", "application/json")
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (f *fakeServer) postBatch(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	var req struct {
		Atomic       bool            `json:"atomic"`
		Transactions []fakeTxRequest `json:"transactions"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || req.Atomic || len(req.Transactions) > 1000 {
		writeProblem(w, http.StatusUnprocessableEntity, "validation_failed")
		return
	}
	results := make([]any, 0, len(req.Transactions))
	for _, tx := range req.Transactions {
		status, body := f.apply(l, tx.IdempotencyKey, tx)
		if status < 300 {
			results = append(results, map[string]any{"status": status, "transaction": json.RawMessage(body)})
		} else {
			results = append(results, map[string]any{"status": status, "error": json.RawMessage(body)})
		}
	}
	f.maybeStall("batch", r)
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// maybeStall delays the answer to the slowNth request of route, after it
// was committed; the server lock is released meanwhile.
func (f *fakeServer) maybeStall(route string, r *http.Request) {
	if route != f.slowRoute || f.slowCount.Add(1) != f.slowNth {
		return
	}
	f.mu.Unlock()
	defer f.mu.Lock()
	select {
	case <-time.After(f.slowDelay):
	case <-r.Context().Done():
	}
}

// resolveHold serves …/post (capture) and …/void.
func (f *fakeServer) resolveHold(capture bool) func(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
	return func(w http.ResponseWriter, r *http.Request, l *fakeLedger) {
		_, _ = io.Copy(io.Discard, r.Body) // {} or empty; read so a client that gives up is noticed
		key := r.Header.Get("Idempotency-Key")
		if s, ok := l.idem[key]; ok && key != "" {
			if s.status == http.StatusOK {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			w.WriteHeader(s.status)
			_, _ = w.Write(s.body)
			return
		}
		if capture && f.failCaptureEvery > 0 && f.captures.Add(1)%f.failCaptureEvery == 0 {
			writeProblem(w, http.StatusTooManyRequests, "rate_limited")
			return
		}
		h := l.holds[r.PathValue("id")]
		if h == nil {
			writeProblem(w, http.StatusNotFound, "not_found")
			return
		}
		if !h.open {
			l.idem[key] = fakeStored{http.StatusConflict, problemBody(409, "invalid_state")}
			writeProblem(w, http.StatusConflict, "invalid_state")
			return
		}
		h.open = false
		src, dst := l.accounts[h.src], l.accounts[h.dst]
		src.pendingDebits -= h.amount
		dst.pendingCredits -= h.amount
		status := "voided"
		if capture {
			status = "posted"
			src.posted -= h.amount
			dst.posted += h.amount
		}
		l.seq++
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("tx-%d", l.seq), "sequence": l.seq, "status": status, "pending_id": r.PathValue("id")})
		l.idem[key] = fakeStored{http.StatusOK, body}
		if capture {
			f.maybeStall("post", r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}
