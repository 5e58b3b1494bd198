package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd/telemetry"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// startSpan starts the request's server span, continuing the caller's
// trace (W3C traceparent) when there is one. Its name is the method until
// routing has found the route pattern (endSpan): the pattern, not the raw
// path, so that spans group by endpoint and hold no identifiers.
func (s *Server) startSpan(ctx context.Context, r *http.Request, requestID string) (context.Context, trace.Span) {
	ctx = telemetry.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	ctx, span := s.cfg.Tracer.Start(ctx, r.Method, serverKind)
	// Attributes only for a span that is recorded: an unsampled request
	// (99 % at the default ratio) builds none.
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLScheme(scheme(r)), semconv.NetworkProtocolVersion(protoVersion(r)),
			semconv.UserAgentOriginal(r.UserAgent()),
			semconv.HTTPRequestHeader("request-id", requestID))
	}
	return ctx, span
}

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// endSpan names the span after its route and records the answer; a 5xx is
// an error of the span (a 4xx is the client's, per the HTTP conventions).
func endSpan(span trace.Span, method, pattern string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	route := pattern
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		route = pattern[i+1:]
	}
	span.SetName(method + " " + route)
	span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1.1"
}
