// Command receiver is the webhook receiver of bench/tail.sh: it answers
// every POST with 200 at once and records, per URL path (the bench gives
// each ledger's endpoint its own path), how many deliveries arrived, how
// many distinct webhook-ids, and the lag of each: the time it arrived
// minus the event's created_at (the body's "timestamp"), in an HDR
// histogram. It does not verify signatures: it stands for a fast receiver,
// and what is measured is ledgerd's side.
//
//	go run ./bench/receiver [-addr 127.0.0.1:0]
//
// It prints "listening on ADDR" once bound and serves until SIGINT or
// SIGTERM:
//
//	POST /any/path             a delivery
//	GET  /stats                {"/path": {"requests", "distinct", "lag_ms": {"count", "p50", "p99", "max"}}}
//	POST /window?path=P&from=T lag of P counts only events created at or after T (Unix seconds)
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ledgerd/ledgerd/bench/serve"
)

type stream struct {
	requests int64
	ids      map[string]struct{}
	from     time.Time
	lag      *hdrhistogram.Histogram // microseconds
}

type receiver struct {
	mu      sync.Mutex
	streams map[string]*stream
}

func (r *receiver) get(path string) *stream {
	s := r.streams[path]
	if s == nil {
		// 1 µs to 1 h at 3 significant digits.
		s = &stream{ids: map[string]struct{}{}, lag: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
		r.streams[path] = s
	}
	return s
}

func (r *receiver) deliver(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var body struct {
		Timestamp time.Time `json:"timestamp"`
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	s := r.get(req.URL.Path)
	s.requests++
	s.ids[id] = struct{}{}
	if !body.Timestamp.Before(s.from) {
		_ = s.lag.RecordValue(max(1, now.Sub(body.Timestamp).Microseconds()))
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) stats(w http.ResponseWriter, _ *http.Request) {
	type out struct {
		Requests int64 `json:"requests"`
		Distinct int   `json:"distinct"`
		Lag      struct {
			Count int64   `json:"count"`
			P50   float64 `json:"p50"`
			P99   float64 `json:"p99"`
			Max   float64 `json:"max"`
		} `json:"lag_ms"`
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	r.mu.Lock()
	all := map[string]out{}
	for p, s := range r.streams {
		var o out
		o.Requests, o.Distinct = s.requests, len(s.ids)
		o.Lag.Count = s.lag.TotalCount()
		o.Lag.P50, o.Lag.P99, o.Lag.Max = ms(s.lag.ValueAtQuantile(50)), ms(s.lag.ValueAtQuantile(99)), ms(s.lag.Max())
		all[p] = o
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(all)
}

func (r *receiver) window(w http.ResponseWriter, req *http.Request) {
	from, err := strconv.ParseInt(req.URL.Query().Get("from"), 10, 64)
	if err != nil {
		http.Error(w, "from: Unix seconds", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	s := r.get(req.URL.Query().Get("path"))
	s.from = time.Unix(from, 0)
	s.lag.Reset()
	r.mu.Unlock()
}

func main() {
	r := &receiver{streams: map[string]*stream{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", r.stats)
	mux.HandleFunc("POST /window", r.window)
	mux.HandleFunc("POST /", r.deliver)
	serve.Main("receiver", &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
}
