package job

import (
	"context"
	"strings"

	"github.com/ledgerd/ledgerd"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceStore finds the trace context of the request that created a
// transaction, when that request was sampled; *postgres.DB is one.
type TraceStore interface {
	TraceParent(ctx context.Context, txID string) (string, bool, error)
}

// tracedAttempt is attempt within a span that continues the trace of the
// request whose transaction the event is: a child of that request's
// server span, so that one trace shows the POST, its batch flush and
// every delivery attempt of its event. Only events of sampled requests get
// a span (their traceparent was stored with the transaction); with
// tracing off (no Tracer) this is attempt and nothing more, and with it on
// an unsampled event costs one primary-key probe that finds nothing.
func (w *Worker) tracedAttempt(ctx context.Context, t *ledgerd.DeliveryTask) ledgerd.DeliveryResult {
	ts, ok := w.store.(TraceStore)
	if w.cfg.Tracer == nil || !ok {
		return w.attempt(ctx, t)
	}
	txID, ok := ledgerd.TransactionIDOfEvent(t.Event.ID)
	if !ok || !strings.HasPrefix(string(t.Event.Type), "transaction.") {
		return w.attempt(ctx, t)
	}
	tp, found, err := ts.TraceParent(ctx, txID)
	if err != nil || !found {
		return w.attempt(ctx, t)
	}
	parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
	sctx, span := w.cfg.Tracer.Start(parent, "webhook.deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("ledgerd.event.type", string(t.Event.Type)),
			attribute.String("ledgerd.webhook.endpoint", t.Endpoint.ID),
			attribute.Int("ledgerd.webhook.attempt", t.Attempts)))
	defer span.End()
	r := w.attempt(sctx, t)
	span.SetAttributes(attribute.String("ledgerd.webhook.status", r.Status))
	if r.StatusCode != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", r.StatusCode))
	}
	if r.Status != ledgerd.DeliveryDelivered {
		span.SetStatus(codes.Error, r.Err)
	}
	return r
}
