package job

import (
	"context"
	"strings"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/webhook"
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

// tracedDeliver makes one delivery attempt (the first, from the relay, or
// a retry) within a span that continues the trace of the request whose
// transaction the event is: a child of that request's server span, so
// that one trace shows the POST, its batch flush and every delivery
// attempt of its event. Only events of sampled requests get a span (their
// traceparent was stored with the transaction); with tracing off (no
// Tracer) this is webhook.Deliver and nothing more, and with it on an
// unsampled event costs one primary-key probe that finds nothing.
func (w *Worker) tracedDeliver(ctx context.Context, t *ledgerd.DeliveryTask, ep webhook.Endpoint) webhook.Outcome {
	if sctx, span := w.deliverySpan(ctx, t); span != nil {
		defer span.End()
		out := webhook.Deliver(sctx, w.client, ep, &t.Event)
		span.SetAttributes(attribute.String("ledgerd.webhook.result", out.Result.String()))
		if out.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", out.StatusCode))
		}
		if out.Result != webhook.Delivered {
			span.SetStatus(codes.Error, out.Err)
		}
		return out
	}
	return webhook.Deliver(ctx, w.client, ep, &t.Event)
}

// deliverySpan starts the attempt's span, or returns nil when the event
// has no sampled trace to continue.
func (w *Worker) deliverySpan(ctx context.Context, t *ledgerd.DeliveryTask) (context.Context, trace.Span) {
	ts, ok := w.store.(TraceStore)
	if w.cfg.Tracer == nil || !ok || !strings.HasPrefix(string(t.Event.Type), "transaction.") {
		return ctx, nil
	}
	txID, ok := ledgerd.TransactionIDOfEvent(t.Event.ID)
	if !ok {
		return ctx, nil
	}
	tp, found, err := ts.TraceParent(ctx, txID)
	if err != nil || !found {
		return ctx, nil
	}
	parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
	return w.cfg.Tracer.Start(parent, "webhook.deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("ledgerd.event.type", string(t.Event.Type)),
			attribute.String("ledgerd.webhook.endpoint", t.Endpoint.ID),
			attribute.Int("ledgerd.webhook.attempt", t.Attempts)))
}
