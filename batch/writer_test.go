package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd"
)

// fakeStore stands in for PostgreSQL where a test needs to inject the
// failures a real database produces only by accident (the writer's own
// behaviour on them is what is tested; postgres.WriteBatch has its own
// tests against a real database through the API).
type fakeStore struct {
	mu        sync.Mutex
	gate      chan struct{} // when set, the first WriteBatch waits on it
	batches   [][]*ledgerd.WriteUnit
	fail      func(units []*ledgerd.WriteUnit) error
	committed bool
	dead      []string
}

func (f *fakeStore) WriteBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit) error {
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.batches = append(f.batches, units)
	fail := f.fail
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		if err := fail(units); err != nil {
			return err
		}
	}
	for _, u := range units {
		for _, it := range u.Items {
			it.Result = &ledgerd.Transaction{ID: it.IdempotencyKey}
		}
	}
	return nil
}

func (f *fakeStore) BatchCommitted(ctx context.Context, err error) (bool, bool) {
	return f.committed, true
}

func (f *fakeStore) InsertDeadLetter(ctx context.Context, ledgerID int64, key string, request []byte, reason string) error {
	f.mu.Lock()
	f.dead = append(f.dead, key)
	f.mu.Unlock()
	return nil
}

func single(key string) *ledgerd.WriteUnit {
	return &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{{Request: &ledgerd.TransactionRequest{}, IdempotencyKey: key}}}
}

func newWriter(t *testing.T, s Store, cfg Config) *Writer {
	w := New(s, cfg, slog.New(slog.DiscardHandler), nil, func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
	t.Cleanup(w.Close)
	return w
}

func TestWriterBatchesWhileCommitting(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	s := &fakeStore{gate: gate}
	w := newWriter(t, s, Config{MaxItems: 3})
	var wg sync.WaitGroup
	submit := func(k string) {
		defer wg.Done()
		if err := w.Submit(context.Background(), 1, single(k)); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go submit("first")
	// Wait until the first flush is in flight, then queue ten more.
	for {
		s.mu.Lock()
		n := len(s.batches)
		s.mu.Unlock()
		if n == 1 {
			break
		}
	}
	for range 10 {
		wg.Add(1)
		go submit("x")
	}
	for {
		q, _ := w.queue(1)
		if q.queued.Load() == 11 {
			break
		}
	}
	close(gate)
	wg.Wait()
	total := 0
	for _, b := range s.batches[1:] {
		n := 0
		for _, u := range b {
			n += len(u.Items)
		}
		if n > 3 {
			t.Fatalf("batch of %d exceeds MaxItems 3", n)
		}
		total += n
	}
	if total != 10 || len(s.batches) != 1+4 {
		t.Fatalf("got %d items in %d batches, want 10 in 1+4", total, len(s.batches))
	}
}

func TestWriterRetriesItemByItemAfterRollback(t *testing.T) {
	t.Parallel()
	poison := errors.New("check constraint violated")
	s := &fakeStore{fail: func(units []*ledgerd.WriteUnit) error {
		for _, u := range units {
			for _, it := range u.Items {
				if it.IdempotencyKey == "poison" {
					return poison
				}
			}
		}
		return nil
	}}
	w := newWriter(t, s, Config{})
	u := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{
		{Request: &ledgerd.TransactionRequest{}, IdempotencyKey: "a"},
		{Request: &ledgerd.TransactionRequest{}, IdempotencyKey: "poison"},
		{Request: &ledgerd.TransactionRequest{}, IdempotencyKey: "c"},
	}}
	if err := w.Submit(context.Background(), 1, u); err != nil {
		t.Fatal(err)
	}
	if u.Items[0].Result == nil || u.Items[2].Result == nil {
		t.Fatal("good items were not written")
	}
	if u.Items[1].Err == nil || u.Items[1].Err.Code != ledgerd.CodeInternal {
		t.Fatalf("poison item: %+v", u.Items[1])
	}
	if len(s.dead) != 1 || s.dead[0] != "poison" {
		t.Fatalf("dead letters %v", s.dead)
	}
}

func TestWriterUnknownCommitOutcome(t *testing.T) {
	t.Parallel()
	for _, committed := range []bool{true, false} {
		s := &fakeStore{committed: committed, fail: func([]*ledgerd.WriteUnit) error {
			return fmt.Errorf("%w: unexpected EOF", ledgerd.ErrCommitUnknown)
		}}
		w := newWriter(t, s, Config{})
		err := w.Submit(context.Background(), 1, single("k"))
		if committed && err != nil {
			t.Fatalf("committed batch answered %v", err)
		}
		if !committed && !errors.Is(err, ErrOverloaded) {
			t.Fatalf("unknown outcome answered %v, want ErrOverloaded", err)
		}
		if len(s.batches) != 1 {
			t.Fatalf("an unknown outcome must not be retried: %d attempts", len(s.batches))
		}
	}
}

func TestWriterUnavailableIsOverloaded(t *testing.T) {
	t.Parallel()
	s := &fakeStore{fail: func([]*ledgerd.WriteUnit) error { return ledgerd.ErrUnavailable }}
	w := newWriter(t, s, Config{})
	if err := w.Submit(context.Background(), 1, single("k")); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("got %v", err)
	}
}

func TestWriterBackPressure(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	s := &fakeStore{gate: gate}
	w := newWriter(t, s, Config{MaxQueued: 2})
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- w.Submit(context.Background(), 1, single("k")) }()
	}
	overloaded := 0
	for range 1 {
		if err := <-errs; errors.Is(err, ErrOverloaded) {
			overloaded++
		}
	}
	close(gate)
	for range 2 {
		if err := <-errs; errors.Is(err, ErrOverloaded) {
			overloaded++
		}
	}
	if overloaded != 1 {
		t.Fatalf("%d submissions refused, want 1", overloaded)
	}
}
