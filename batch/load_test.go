package batch

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// What a writer publishes is the transactions it held in flight, averaged
// over the interval: three submissions held for the whole of an interval
// publish about three; a writer with nothing in flight publishes 0 once
// and then nothing.
func TestPublishLoadAveragesInFlight(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeStore{gate: gate}
	w := newWriter(t, f, Config{MaxItems: 10})
	var mu sync.Mutex
	var got []float64
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go w.PublishLoad(ctx, func(_ context.Context, v float64) error {
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
		return nil
	}, 200*time.Millisecond, slog.New(slog.DiscardHandler))

	// Three submissions: the first batch waits on the gate, the other two
	// queue behind it; all three stay in flight for a second.
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b", "c"} {
		wg.Go(func() {
			if err := w.Submit(t.Context(), 1, single(k)); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(gate)
	wg.Wait()
	time.Sleep(time.Second)
	cancel()

	mu.Lock()
	defer mu.Unlock()
	// The load is counted when a submission is answered: the interval
	// that saw the three answered carries their whole second (about 3 s
	// of transaction time over 0.2 s: about 15), the rest are 0.
	peak, zeros := 0.0, 0
	for _, v := range got {
		peak = max(peak, v)
		if v == 0 {
			zeros++
		}
	}
	if peak < 10 || peak > 20 {
		t.Fatalf("published %v: want one interval of about 15 (3 transactions × 1 s / 0.2 s)", got)
	}
	// Idle before the submissions are answered and after: one 0 each
	// time the writer turns idle, never a run of them.
	if zeros > 2 {
		t.Fatalf("published %v: an idle writer kept publishing 0", got)
	}
}
