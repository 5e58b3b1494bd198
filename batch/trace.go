package batch

import (
	"context"
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// maxFlushLinks caps the links of one flush span (the SDK's default
// limit): a batch of thousands serves at most a few sampled requests at a
// low ratio anyway.
const maxFlushLinks = 128

// startFlush records the queue wait of a batch's submissions and, when
// tracing is on and at least one of them belongs to a sampled request,
// starts the flush's span: a child of the first sampled request (so the
// parent-based sampler keeps it) linked to every sampled request it serves,
// since one flush serves many requests. A batch of unsampled requests gets
// no span at all (nil), and costs nothing more than a loop.
func (w *Writer) startFlush(batch []*submission, n int, path string) (context.Context, trace.Span) {
	now := time.Now()
	var links []trace.Link
	var parent trace.SpanContext
	for _, s := range batch {
		w.metrics.waited(now.Sub(s.enqueued))
		if !s.span.IsSampled() {
			continue
		}
		if !parent.IsValid() {
			parent = s.span
		}
		if len(links) < maxFlushLinks {
			links = append(links, trace.Link{SpanContext: s.span})
		}
	}
	ctx := context.Background()
	if w.cfg.Tracer == nil || !parent.IsValid() {
		return ctx, nil
	}
	ctx = trace.ContextWithSpanContext(ctx, parent)
	ctx, span := w.cfg.Tracer.Start(ctx, "batch.flush", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...), trace.WithTimestamp(now),
		trace.WithAttributes(attribute.Int("ledgerd.batch.transactions", n),
			attribute.Int("ledgerd.batch.submissions", len(batch)),
			attribute.String("ledgerd.batch.path", path)))
	return ctx, span
}

// traceParent renders sc as a W3C traceparent header value.
func traceParent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	return "00-" + hex.EncodeToString(tid[:]) + "-" + hex.EncodeToString(sid[:]) + "-" + sc.TraceFlags().String()
}
