package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkTelemetry measures what metrics and tracing add to a request on
// the write path (a batch of 10 transfers through ServeHTTP and the
// group-commit writer, committed by a fakeStore, so that the database's
// time does not hide the overhead): bare, with metrics, and with metrics and
// tracing at the default ratio (1 %) and at 100 %. Spans go to a no-op
// exporter through the SDK's batch span processor, as in production.
//
//	go test -run '^$' -bench BenchmarkTelemetry -benchmem ./httpapi
func BenchmarkTelemetry(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"atomic":false,"transactions":[`)
	for i := range 10 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"postings":[{"source":"a","destination":"b","amount":%d,"asset":"USD"}]}`, i+1)
	}
	body.WriteString(`]}`)
	for _, c := range []struct {
		name    string
		metrics bool
		ratio   float64 // <0: no tracer
	}{{"bare", false, -1}, {"metrics", true, -1}, {"metrics+trace1%", true, 0.01}, {"metrics+trace100%", true, 1}} {
		b.Run(c.name, func(b *testing.B) {
			var tracer trace.Tracer
			if c.ratio >= 0 {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.ratio))))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				tracer = tp.Tracer("bench")
			}
			var bm *batch.Metrics
			var m *Metrics
			if c.metrics {
				reg := prometheus.NewRegistry()
				bm, m = batch.NewMetrics(reg), NewMetrics(reg)
			}
			w := batch.New(&fakeStore{}, batch.Config{Tracer: tracer}, slog.New(slog.DiscardHandler), bm,
				func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
			b.Cleanup(w.Close)
			s := NewServer(nil, w, Config{AdminKey: fuzzAdminKey, Metrics: m, Tracer: tracer})
			s.ledgers.Store("fuzz", &ledgerd.Ledger{ID: 1, Name: "fuzz"})
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", "/v1/ledgers/fuzz/transactions/batch", bytes.NewReader(body.Bytes()))
					req.Header.Set("Authorization", "Bearer "+fuzzAdminKey)
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
