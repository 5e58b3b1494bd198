package job

import (
	"context"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
)

// firstWait bounds how long a relay step waits for its first attempts.
// The step holds its ledger's cursor (and a transaction) meanwhile, so it
// is what a slow endpoint can delay the ledger's other endpoints by;
// attempts still running then go on, and the worker writes their outcome
// once the step has committed.
const firstWait = 250 * time.Millisecond

// openKey names a first attempt that outlived its relay step.
type openKey struct{ endpoint, event string }

// relayLoop moves the cursors while there is anything to move, then polls.
func (w *Worker) relayLoop(ctx context.Context) {
	for ctx.Err() == nil {
		// A step once started is finished even if the worker is told to
		// stop: its attempts have been made, and its commit records them.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), firstWait+30*time.Second)
		start := time.Now()
		n, open, err := w.store.RelayStep(sctx, postgres.WebhookConsumer, w.cfg.RelayBatch, w.events.ReadEvents,
			w.firstAttempts, w.lease())
		worked := time.Since(start)
		cancel()
		w.handOver(open)
		if err != nil && ctx.Err() == nil {
			w.log.Error("relay", "err", err)
		}
		w.m.relayed.WithLabelValues(postgres.WebhookConsumer).Add(float64(n))
		if n > 0 && err == nil {
			select {
			case w.relayed <- struct{}{}:
			default:
			}
			w.pace.rest(ctx, worked)
			continue
		}
		sleep(ctx, w.cfg.Poll)
	}
}

// firstAttempts makes the first attempts of a relay step's deliveries to
// healthy endpoints: each endpoint's in event order, up to PerEndpoint at
// once (and Concurrency in all), for at most firstWait. A delivery to an
// endpoint that answers at once thus costs one row, written with its
// outcome. What has not started by then is queued for the delivery loop;
// what has started but not finished, or met a 410, is left open and
// handed over once the step commits.
func (w *Worker) firstAttempts(_ context.Context, tasks []ledgerd.DeliveryTask) []ledgerd.FirstAttempt {
	deadline := time.NewTimer(firstWait)
	defer deadline.Stop()
	expired, stop := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-deadline.C:
		case <-w.actx.Done():
		case <-stop:
		}
		close(expired)
	}()

	type done struct {
		i   int
		out webhook.Outcome
	}
	finished := make(chan done, len(tasks))
	outcomes := make([]chan webhook.Outcome, len(tasks)) // nil: not started
	byEndpoint := map[string][]int{}
	for i := range tasks {
		byEndpoint[tasks[i].Endpoint.ID] = append(byEndpoint[tasks[i].Endpoint.ID], i)
	}
	all := make(chan struct{}, w.cfg.Concurrency)
	var dispatchers sync.WaitGroup
	for _, idx := range byEndpoint {
		dispatchers.Go(func() {
			slots := make(chan struct{}, w.cfg.PerEndpoint)
			for _, i := range idx {
				select {
				case slots <- struct{}{}:
				case <-expired:
					return
				}
				select {
				case all <- struct{}{}:
				case <-expired:
					return
				}
				ch := make(chan webhook.Outcome, 1)
				outcomes[i] = ch
				w.inflight.Add(1)
				w.m.inFlight.Inc()
				go func() {
					defer w.inflight.Done()
					out := w.deliver(w.actx, &tasks[i])
					<-all
					<-slots
					w.m.inFlight.Dec()
					ch <- out
					finished <- done{i, out}
				}()
			}
		})
	}
	dispatched := make(chan struct{})
	go func() { dispatchers.Wait(); close(dispatched) }()

	got := make(map[int]webhook.Outcome, len(tasks))
	started := -1 // known once every dispatcher has returned
wait:
	for started < 0 || len(got) < started {
		select {
		case d := <-finished:
			got[d.i] = d.out
		case <-dispatched:
			dispatched, started = nil, 0
			for _, ch := range outcomes {
				if ch != nil {
					started++
				}
			}
		case <-expired:
			break wait
		}
	}
	close(stop)
	dispatchers.Wait()
	for more := true; more; {
		select {
		case d := <-finished:
			got[d.i] = d.out
		default:
			more = false
		}
	}

	out := make([]ledgerd.FirstAttempt, len(tasks))
	w.opened = map[openKey]chan webhook.Outcome{}
	for i, ch := range outcomes {
		if ch == nil {
			continue // not started: queued due now
		}
		o, ok := got[i]
		switch {
		case ok && w.actx.Err() != nil:
			// Cut short by a shutdown: queued due now, the attempt not
			// counted, as a claimed delivery would be released.
			continue
		case ok && o.Result != webhook.Gone:
			out[i] = ledgerd.FirstAttempt{Made: true, Result: w.settle(w.actx, &tasks[i], o)}
			continue
		}
		out[i] = ledgerd.FirstAttempt{Made: true, Open: true}
		w.opened[openKey{tasks[i].Endpoint.ID, tasks[i].Event.ID}] = ch
	}
	return out
}

// handOver settles the open first attempts of a committed relay step (the
// tasks carry their rows' ids now) as the delivery loop settles claimed
// ones; the outcomes of a step that did not commit are dropped, and the
// events are relayed again.
func (w *Worker) handOver(open []ledgerd.DeliveryTask) {
	for _, t := range open {
		ch, ok := w.opened[openKey{t.Endpoint.ID, t.Event.ID}]
		if !ok {
			continue
		}
		w.inflight.Add(1)
		go func() {
			defer w.inflight.Done()
			w.results <- w.settle(w.actx, &t, <-ch)
		}()
	}
	w.opened = nil
}
