package e2e

import (
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes the protobuf
// export requests a node sends and keeps their spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	srv   *httptest.Server
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf on /v1/traces", http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &ex); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range ex.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				r.spans = append(r.spans, ss.GetSpans()...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) all() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			v := kv.GetValue()
			if v.GetStringValue() != "" {
				return v.GetStringValue()
			}
			return fmt.Sprint(v.GetIntValue())
		}
	}
	return ""
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestTracesOTLP: a node with an OTLP endpoint and a sample ratio of 0
// records exactly the requests whose caller sampled them (parent-based):
// a server span named by the route pattern, child of the caller's span,
// with the HTTP semantic-convention attributes; a batch.flush span linked
// to the server spans of the requests it committed; database spans under
// the flush. Unsampled requests export nothing, and only sampled requests'
// log lines carry trace and span ids.
func TestTracesOTLP(t *testing.T) {
	recv := startOTLPReceiver(t)
	bin := buildLedgerd(t)
	debug := freeAddr(t)
	n := startNode(t, bin, "traced", ledgertest.NewDatabase(t), "LEDGERD_DEBUG_ADDR="+debug,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+recv.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100",
		"LEDGERD_TRACE_SAMPLE_RATIO=0", "LEDGERD_ACCESS_LOG=true")
	fx := newFixture(t, n.URL(), "traced", 4, 1000)
	hc := newHTTPClient(t)

	type sent struct{ traceID, parent string }
	var sampled, unsampled []sent
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 12 {
		s := sent{traceID: randomHex(t, 16), parent: randomHex(t, 8)}
		flags := "01"
		if i%2 == 1 {
			flags = "00"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"postings":[{"source":%q,"destination":%q,"amount":1,"asset":"USD"}]}`,
				fx.accounts[i%4], fx.accounts[(i+1)%4])
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, n.URL()+txPath(fx.ledger), strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+fx.writeKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("traced-%d", i))
			req.Header.Set("traceparent", "00-"+s.traceID+"-"+s.parent+"-"+flags)
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("transfer %d: %d", i, resp.StatusCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if flags == "01" {
				sampled = append(sampled, s)
			} else {
				unsampled = append(unsampled, s)
			}
		}()
	}
	wg.Wait()

	const route = "/v1/ledgers/{ledger}/transactions"
	var servers map[string]*tracepb.Span // trace id → server span
	var flushes []*tracepb.Span
	var spans []*tracepb.Span
	deadline := time.Now().Add(15 * time.Second)
	for {
		spans = recv.all()
		servers = map[string]*tracepb.Span{}
		flushes = flushes[:0]
		for _, s := range spans {
			switch {
			case s.GetName() == "POST "+route:
				servers[hex.EncodeToString(s.GetTraceId())] = s
			case s.GetName() == "batch.flush":
				flushes = append(flushes, s)
			}
		}
		linked := map[string]bool{}
		for _, f := range flushes {
			for _, l := range f.GetLinks() {
				linked[hex.EncodeToString(l.GetSpanId())] = true
			}
		}
		done := len(servers) >= len(sampled)
		for _, s := range servers {
			done = done && linked[hex.EncodeToString(s.GetSpanId())]
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	traces := map[string]bool{}
	for _, s := range spans {
		traces[hex.EncodeToString(s.GetTraceId())] = true
	}
	for _, u := range unsampled {
		if traces[u.traceID] {
			t.Errorf("unsampled trace %s was exported", u.traceID)
		}
	}
	if len(servers) != len(sampled) {
		t.Errorf("%d server spans of transfers, want %d (the sampled ones only; the setup's requests are not sampled at ratio 0)",
			len(servers), len(sampled))
	}
	linked := map[string]bool{}
	flushIDs := map[string]bool{}
	for _, f := range flushes {
		flushIDs[hex.EncodeToString(f.GetSpanId())] = true
		if f.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL || attr(f, "ledgerd.batch.transactions") == "" ||
			attr(f, "ledgerd.batch.transactions") == "0" {
			t.Errorf("flush span: kind %v, attributes %v", f.GetKind(), f.GetAttributes())
		}
		if len(f.GetLinks()) == 0 {
			t.Errorf("flush span without links")
		}
		for _, l := range f.GetLinks() {
			linked[hex.EncodeToString(l.GetSpanId())] = true
		}
	}
	for _, s := range sampled {
		srv := servers[s.traceID]
		if srv == nil {
			t.Errorf("trace %s: no server span", s.traceID)
			continue
		}
		if hex.EncodeToString(srv.GetParentSpanId()) != s.parent {
			t.Errorf("server span's parent %x, want the caller's %s", srv.GetParentSpanId(), s.parent)
		}
		if srv.GetKind() != tracepb.Span_SPAN_KIND_SERVER || attr(srv, "http.route") != route ||
			attr(srv, "http.response.status_code") != "201" || attr(srv, "http.request.method") != "POST" {
			t.Errorf("server span: kind %v, attributes %v", srv.GetKind(), srv.GetAttributes())
		}
		if !linked[hex.EncodeToString(srv.GetSpanId())] {
			t.Errorf("trace %s: no flush span links to its server span", s.traceID)
		}
	}
	dbSpans := 0
	for _, s := range spans {
		if flushIDs[hex.EncodeToString(s.GetParentSpanId())] {
			dbSpans++
		}
	}
	if dbSpans == 0 {
		t.Error("no database span under a flush span")
	}
	t.Logf("%d spans: %d server spans of transfers, %d flushes, %d database spans under them", len(spans), len(servers),
		len(flushes), dbSpans)

	// The latency histogram's exemplars (OpenMetrics) name sampled traces
	// only.
	req, _ := http.NewRequest(http.MethodGet, "http://"+debug+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	om, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exemplars := 0
	for _, l := range strings.Split(string(om), "\n") {
		if !strings.HasPrefix(l, "ledgerd_http_request_duration_seconds_bucket{") || !strings.Contains(l, "# {trace_id=") {
			continue
		}
		exemplars++
		id := l[strings.Index(l, `# {trace_id="`)+len(`# {trace_id="`):]
		id = id[:strings.IndexByte(id, '"')]
		known := false
		for _, s := range sampled {
			known = known || s.traceID == id
		}
		if !known {
			t.Errorf("exemplar of trace %s, not a sampled request", id)
		}
	}
	if exemplars == 0 {
		t.Errorf("no exemplar on the latency histogram:\n%s", om)
	}

	// The access log: trace ids on the sampled requests' lines only.
	logged := map[string]string{} // trace id → span id
	f, err := os.Open(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	requests := 0
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "request" || line["route"] != "POST "+route {
			continue
		}
		requests++
		if id, ok := line["trace_id"].(string); ok {
			logged[id], _ = line["span_id"].(string)
		}
	}
	if requests < len(sampled)+len(unsampled) {
		t.Errorf("%d access log lines of transfers", requests)
	}
	for _, s := range sampled {
		if srv := servers[s.traceID]; srv != nil && logged[s.traceID] != hex.EncodeToString(srv.GetSpanId()) {
			t.Errorf("trace %s: log line span id %q, want the server span's %x", s.traceID, logged[s.traceID], srv.GetSpanId())
		}
	}
	for _, u := range unsampled {
		if _, ok := logged[u.traceID]; ok {
			t.Errorf("unsampled trace %s in the log", u.traceID)
		}
	}
}
