package e2e

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestDeliverySpansContinueRequestTrace: a standalone `ledgerd worker`
// delivering the event of a transaction whose POST was sampled records a
// webhook.deliver span in that POST's trace, a child of its server span;
// the event of an unsampled POST gets no span at all.
func TestDeliverySpansContinueRequestTrace(t *testing.T) {
	recv := startOTLPReceiver(t)
	bin := buildLedgerd(t)
	dbURL := ledgertest.NewDatabase(t)
	otel := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}
	api := startNode(t, bin, "api", dbURL, append([]string{tailWorkerEnv, "LEDGERD_TRACE_SAMPLE_RATIO=0"}, otel...)...)
	f := newTailFixture(t, api.URL(), "traced-tail", 0)
	startWorkerProc(t, bin, "worker", dbURL, append([]string{tailWorkerEnv, "LEDGERD_WORKER_POLL=50ms"}, otel...)...)

	post := func(traceID, flags string) string {
		t.Helper()
		body := `{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}`
		req, _ := http.NewRequest(http.MethodPost, api.URL()+"/v1/ledgers/traced-tail/transactions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ledgertest.AdminKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+traceID+"-"+randomHex(t, 8)+"-"+flags)
		resp, err := f.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, b)
		}
		var tx struct{ ID string }
		_ = json.Unmarshal(b, &tx)
		return "evt_" + tx.ID
	}
	sampledTrace, unsampledTrace := randomHex(t, 16), randomHex(t, 16)
	sampledEvent := post(sampledTrace, "01")
	unsampledEvent := post(unsampledTrace, "00")

	// Both events reach both endpoints (a posted transfer is an event of
	// either's types).
	waitForCond(t, 30*time.Second, "the deliveries", func() bool {
		all, _ := f.all.counts()
		few, _ := f.few.counts()
		return all[sampledEvent] > 0 && all[unsampledEvent] > 0 && few[sampledEvent] > 0 && few[unsampledEvent] > 0
	})
	var server *tracepb.Span
	var deliveries []*tracepb.Span
	waitForCond(t, 15*time.Second, "the delivery spans", func() bool {
		server, deliveries = nil, nil
		for _, s := range recv.all() {
			switch {
			case s.GetName() == "POST /v1/ledgers/{ledger}/transactions" && hex.EncodeToString(s.GetTraceId()) == sampledTrace:
				server = s
			case s.GetName() == "webhook.deliver":
				deliveries = append(deliveries, s)
			}
		}
		return server != nil && len(deliveries) >= 2
	})
	// Let a stray span of the unsampled event arrive, if there were one.
	time.Sleep(500 * time.Millisecond)
	deliveries = deliveries[:0]
	for _, s := range recv.all() {
		if s.GetName() == "webhook.deliver" {
			deliveries = append(deliveries, s)
		}
		if hex.EncodeToString(s.GetTraceId()) == unsampledTrace {
			t.Errorf("span %q exported in the unsampled trace", s.GetName())
		}
	}
	if len(deliveries) != 2 {
		t.Fatalf("%d delivery spans, want 2 (the sampled event to each endpoint)", len(deliveries))
	}
	for _, d := range deliveries {
		if hex.EncodeToString(d.GetTraceId()) != sampledTrace {
			t.Errorf("delivery span in trace %x, want the POST's %s", d.GetTraceId(), sampledTrace)
		}
		if hex.EncodeToString(d.GetParentSpanId()) != hex.EncodeToString(server.GetSpanId()) {
			t.Errorf("delivery span's parent %x, want the POST's server span %x", d.GetParentSpanId(), server.GetSpanId())
		}
		if d.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || attr(d, "ledgerd.event.type") != "transaction.posted" ||
			attr(d, "ledgerd.webhook.result") != "delivered" || attr(d, "http.response.status_code") != "204" {
			t.Errorf("delivery span: kind %v, attributes %v", d.GetKind(), d.GetAttributes())
		}
	}
}

func waitForCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
