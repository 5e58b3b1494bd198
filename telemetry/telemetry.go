// Package telemetry is the node's one home for what makes it observable:
// the JSON logger and its per-component loggers, the Prometheus registry,
// the OpenTelemetry tracer provider and the debug listener that serves
// metrics and profiles. main builds a Telemetry and hands each component
// what it needs; each component owns its metrics struct, registered on
// Registry.
package telemetry

import (
	"context"
	"io"
	"log/slog"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options configure New.
type Options struct {
	// Out receives the JSON log lines (stdout) unless Handler is set.
	Out io.Writer
	// Handler, when set, replaces the JSON handler on Out (ledgerd dev
	// writes a file and the terminal).
	Handler slog.Handler
	// SampleRatio is the share of new traces sampled (LEDGERD_TRACE_SAMPLE_RATIO).
	SampleRatio float64
	// LookupEnv reads the OTEL_* variables (os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Version is reported as service.version.
	Version string
}

// Telemetry holds the node's logger, registry and tracer provider.
type Telemetry struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	// provider is nil when tracing is off.
	provider *sdktrace.TracerProvider
}

// New builds the node's telemetry. Tracing is on only when an OTLP
// endpoint is configured.
func New(ctx context.Context, o Options) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	t := &Telemetry{Log: NewLogger(o.Out), Registry: reg}
	if o.Handler != nil {
		t.Log = slog.New(traceHandler{o.Handler})
	}
	if o.LookupEnv != nil && TracingEnabled(o.LookupEnv) {
		tp, err := newTracerProvider(ctx, o.SampleRatio, o.Version)
		if err != nil {
			return nil, err
		}
		t.provider = tp
	}
	return t, nil
}

// Logger returns the logger of one component: its lines carry component=name.
func (t *Telemetry) Logger(component string) *slog.Logger {
	return t.Log.With("component", component)
}

// Tracing tells whether spans are exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.provider != nil }

// Tracer returns a named tracer, or nil when tracing is off: components
// skip span work entirely then, rather than call a no-op tracer on the hot
// path.
func (t *Telemetry) Tracer(name string) trace.Tracer {
	if !t.Tracing() {
		return nil
	}
	return t.provider.Tracer(name)
}

// PgxTracer returns the database driver's tracer (a span per query, batch,
// copy and connect inside a sampled request), or nil when tracing is off.
func (t *Telemetry) PgxTracer() pgx.QueryTracer {
	if !t.Tracing() {
		return nil
	}
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(t.provider), otelpgx.WithTrimSQLInSpanName(),
		otelpgx.WithDisableConnectionDetailsInAttributes())
}

// Shutdown flushes the spans still buffered.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if !t.Tracing() {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
