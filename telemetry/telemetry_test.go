package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTracingEnabled(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		got := TracingEnabled(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}

// TestNoTracingNoCost: without an endpoint there is no tracer and no pgx
// tracer, so components skip span work entirely.
func TestNoTracingNoCost(t *testing.T) {
	tel, err := New(context.Background(), Options{Out: &bytes.Buffer{}, SampleRatio: 1,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing() || tel.Tracer("x") != nil || tel.PgxTracer() != nil {
		t.Error("tracing on without an endpoint")
	}
}

// TestLogTraceIDs: a line logged in a sampled span's context carries its
// ids; an unsampled one's does not; the component attribute stays.
func TestLogTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	tel := &Telemetry{Log: NewLogger(&buf)}
	log := tel.Logger("httpapi")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	sampled := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	unsampled := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(sampled, "one")
	log.InfoContext(unsampled, "two")
	log.Info("three")
	dec := json.NewDecoder(&buf)
	for i, wantIDs := range []bool{true, false, false} {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line["component"] != "httpapi" {
			t.Errorf("line %d: component %v", i, line["component"])
		}
		_, has := line["trace_id"]
		if has != wantIDs || (wantIDs && (line["trace_id"] != tid.String() || line["span_id"] != sid.String())) {
			t.Errorf("line %d: %v", i, line)
		}
	}
}
