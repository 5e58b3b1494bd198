package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestFlushSpanLinks: a batch holding sampled requests gets one flush span,
// a child of the first sampled request, linked to every sampled request it
// served; a batch of unsampled requests gets none.
func TestFlushSpanLinks(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	gate := make(chan struct{})
	s := &fakeStore{gate: gate}
	w := newWriter(t, s, Config{MaxItems: 100, Tracer: tp.Tracer("test")})

	// The first submission holds the writer in WriteBatch (unsampled: no
	// span); the next five queue meanwhile and form one batch.
	ctxOf := func(sampled bool, i byte) context.Context {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, i}, SpanID: trace.SpanID{2, i}, TraceFlags: flags}))
	}
	var wg sync.WaitGroup
	submit := func(ctx context.Context, key string) {
		defer wg.Done()
		if err := w.Submit(ctx, 1, single(key)); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go submit(ctxOf(false, 0), "first")
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.batches) == 1 })
	sampled := map[trace.SpanID]bool{}
	for i := byte(1); i <= 5; i++ {
		wg.Add(1)
		if i%2 == 1 {
			sampled[trace.SpanID{2, i}] = true
		}
		go submit(ctxOf(i%2 == 1, i), string('a'+rune(i)))
	}
	waitFor(t, func() bool { return w.queued() == 6 })
	close(gate)
	wg.Wait()

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d flush spans, want 1 (the unsampled batch has none)", len(spans))
	}
	f := spans[0]
	if f.Name() != "batch.flush" || !sampled[f.Parent().SpanID()] {
		t.Errorf("span %q, parent %v", f.Name(), f.Parent().SpanID())
	}
	if len(f.Links()) != len(sampled) {
		t.Fatalf("%d links, want %d", len(f.Links()), len(sampled))
	}
	for _, l := range f.Links() {
		if !sampled[l.SpanContext.SpanID()] {
			t.Errorf("link to %v, not a sampled request", l.SpanContext.SpanID())
		}
	}
}

// TestRetryAndDeadLetterMetrics: a rolled-back batch's units are counted
// as retried, and the one that fails alone as a dead letter.
func TestRetryAndDeadLetterMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	gate := make(chan struct{})
	s := &fakeStore{gate: gate, fail: func(units []*ledgerd.WriteUnit) error {
		for _, u := range units {
			for _, it := range u.Items {
				if it.IdempotencyKey == "poison" {
					return errors.New("constraint violated")
				}
			}
		}
		return nil
	}}
	w := New(s, Config{}, slog.New(slog.DiscardHandler), m, func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
	t.Cleanup(w.Close)
	var wg sync.WaitGroup
	for _, k := range []string{"first", "ok", "poison"} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Submit(context.Background(), 1, single(k)) }()
		if k == "first" {
			waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.batches) == 1 })
		}
	}
	waitFor(t, func() bool { return w.queued() == 3 })
	close(gate)
	wg.Wait()
	if got := testutil.ToFloat64(m.retries); got != 2 {
		t.Errorf("retries %v, want 2 (ok and poison, alone)", got)
	}
	if got := testutil.ToFloat64(m.deadLetters); got != 1 {
		t.Errorf("dead letters %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.queueWait); got != 1 {
		t.Errorf("queue wait: %d series", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
