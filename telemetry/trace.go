package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultSampleRatio is the share of new traces recorded: enough to find a
// slow request's trace among many at a million transactions a day, cheap
// enough to leave on.
const DefaultSampleRatio = 0.01

// TracingEnabled tells whether the standard OTLP variables name an
// endpoint: without one, tracing is off and costs nothing.
func TracingEnabled(lookupEnv func(string) (string, bool)) bool {
	if v, _ := lookupEnv("OTEL_SDK_DISABLED"); strings.EqualFold(v, "true") {
		return false
	}
	if v, _ := lookupEnv("OTEL_TRACES_EXPORTER"); strings.EqualFold(v, "none") {
		return false
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v, _ := lookupEnv(name); v != "" {
			return true
		}
	}
	return false
}

// newTracerProvider exports over OTLP/HTTP, configured by the standard
// OTEL_EXPORTER_OTLP_* variables (read by the exporter itself), sampling
// ParentBased(TraceIDRatioBased(ratio)): a caller's decision is kept, and
// new traces are sampled at ratio.
func newTracerProvider(ctx context.Context, ratio float64, version string) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("ledgerd"), semconv.ServiceVersion(version)))
	if err != nil {
		res = resource.Default()
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	), nil
}

// Propagator reads and writes W3C trace context and baggage headers.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

var _ trace.TracerProvider = (*sdktrace.TracerProvider)(nil)
