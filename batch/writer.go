// Package batch is the group-commit writer of docs/architecture.md. Single requests are
// not written one by one: a writer per ledger collects what callers submit
// while the previous commit is in flight and writes it as one database
// transaction, so throughput comes from batch size rather than from
// parallel writers fighting over the ledger's ordering lock. A lone request
// waits for nobody: the writer flushes as soon as the previous commit
// returns, or when a batch reaches its size limit.
package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrOverloaded means the request was not (or not knowably) written: the
// queue was full, the database unreachable, or the commit's outcome could
// not be determined. The caller answers 503 and the client retries with the
// same Idempotency-Key, which is always safe.
var ErrOverloaded = errors.New("overloaded")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("writer closed")

// Config tunes the writer. Fields are plain values so tests can shrink them.
type Config struct {
	// MaxItems flushes a batch once it holds this many transactions.
	MaxItems int
	// Window, when positive, waits up to this long after the first request
	// of a batch to gather more (useful under steady load; adds latency).
	Window time.Duration
	// MaxQueued is the back-pressure threshold: transactions waiting per
	// ledger beyond which Submit fails fast with ErrOverloaded.
	MaxQueued int
	// FlushTimeout bounds one batch's database work.
	FlushTimeout time.Duration
	// OverlapMin is the fewest transactions a batch must hold to be
	// written while the batch ahead of it commits (with a Store that is a
	// FastPreparer). Smaller batches wait and take in what arrives
	// meanwhile: overlapping them would only make batches smaller.
	OverlapMin int
	// OverlapFlights is the most fast batches committing at once (at
	// least 1; 1 turns overlap off). Each holds a connection; all but the
	// oldest insert while they wait for the lock.
	OverlapFlights int
	// Tracer, when set, records a span per flush of a batch that serves
	// at least one sampled request, linked to those requests' spans.
	Tracer trace.Tracer
}

func (c *Config) defaults() {
	if c.MaxItems <= 0 {
		c.MaxItems = 1000
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 100_000
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 30 * time.Second
	}
	if c.OverlapMin <= 0 {
		c.OverlapMin = 256
	}
	if c.OverlapFlights <= 0 {
		c.OverlapFlights = DefaultOverlapFlights
	}
}

// DefaultOverlapFlights is Config.OverlapFlights when unset.
const DefaultOverlapFlights = 2

// Store is what the writer needs of the database (postgres.BatchStore).
// Its errors are classified with the domain's storage errors (errors.Is):
// ledgerd.ErrUnavailable, ledgerd.ErrCommitUnknown, ledgerd.ErrKeyTaken,
// ledgerd.ErrFastPathRetry; any other error is a known rollback.
type Store interface {
	// WriteBatch writes units as one batch of the ledger and sets every
	// item's outcome. Calls for one ledger come from one goroutine.
	WriteBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit) error
	// BatchCommitted tells, for an error that is ledgerd.ErrCommitUnknown,
	// whether the batch is in the database; ok is false when it cannot.
	BatchCommitted(ctx context.Context, err error) (committed, ok bool)
	InsertDeadLetter(ctx context.Context, ledgerID int64, key string, request []byte, reason string) error
}

// Writer routes submissions to one queue per ledger.
type Writer struct {
	store    Store
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	encode   func(*ledgerd.TransactionRequest) []byte
	mu       sync.Mutex
	queues   map[int64]*queue
	closed   bool
	wg       sync.WaitGroup
	stopping chan struct{}
	// load sums, in transaction-nanoseconds, the time submissions spent
	// in the writer: over an interval, divided by it, the transactions
	// held in flight on average (PublishLoad).
	load atomic.Int64
}

// New returns a writer. metrics may be nil; encode renders a request for
// the dead-letter table.
func New(store Store, cfg Config, log *slog.Logger, metrics *Metrics, encode func(*ledgerd.TransactionRequest) []byte) *Writer {
	cfg.defaults()
	w := &Writer{store: store, cfg: cfg, log: log.With("component", "batch"), metrics: metrics, encode: encode,
		queues: map[int64]*queue{}, stopping: make(chan struct{})}
	if metrics != nil && metrics.reg != nil {
		metrics.registerQueued(metrics.reg, w)
	}
	return w
}

// queued is the number of transactions waiting in every queue.
func (w *Writer) queued() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for _, q := range w.queues {
		n += q.queued.Load()
	}
	return n
}

type submission struct {
	unit     *ledgerd.WriteUnit
	done     chan error
	enqueued time.Time
	// span is the submitter's span when tracing is on (the flush links
	// to it when it is sampled).
	span trace.SpanContext
}

type queue struct {
	ledgerID int64
	ch       chan *submission
	queued   atomic.Int64
}

// Submit hands a unit to its ledger's writer and waits until the unit's
// batch has committed (or failed). On nil, every item carries its outcome.
// If ctx ends first, Submit returns ctx.Err() but the unit may still be
// written: the client learns the outcome by retrying with its key.
func (w *Writer) Submit(ctx context.Context, ledgerID int64, unit *ledgerd.WriteUnit) error {
	q, err := w.queue(ledgerID)
	if err != nil {
		return err
	}
	n := int64(len(unit.Items))
	if q.queued.Add(n) > int64(w.cfg.MaxQueued) && n < q.queued.Load() {
		q.queued.Add(-n)
		return ErrOverloaded
	}
	s := &submission{unit: unit, done: make(chan error, 1), enqueued: time.Now()}
	if w.cfg.Tracer != nil {
		s.span = trace.SpanContextFromContext(ctx)
		if s.span.IsSampled() {
			unit.TraceParent = traceParent(s.span)
		}
	}
	select {
	case q.ch <- s:
	default:
		q.queued.Add(-n)
		return ErrOverloaded
	}
	defer func() { w.load.Add(n * int64(time.Since(s.enqueued))) }()
	select {
	case err := <-s.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) queue(ledgerID int64) (*queue, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	q := w.queues[ledgerID]
	if q == nil {
		q = &queue{ledgerID: ledgerID, ch: make(chan *submission, 16384)}
		w.queues[ledgerID] = q
		w.wg.Add(1)
		go w.run(q)
	}
	return q, nil
}

// Close stops accepting work, lets every queue write what it holds, and
// waits for the ledger writers to finish.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.stopping)
	w.mu.Unlock()
	w.wg.Wait()
}

// FastPreparer is implemented by a Store that can decide a batch on the
// writer's cached state before touching the database (postgres.BatchStore
// does, see postgres/fastpath.go). Such a batch's commit inserts its
// transactions and entries before it takes the ledger's lock, so the
// writer starts it while the batch ahead still commits: two PostgreSQL
// backends work on the ledger at once, one inserting, one finishing.
type FastPreparer interface {
	// PrepareFast returns the function that commits the decided batch,
	// or nil when the batch must be written with WriteBatch. The commit
	// waits for after (nil: do not wait) before it takes the lock, and
	// calls locked once it holds it.
	PrepareFast(ledgerID int64, units []*ledgerd.WriteUnit) func(ctx context.Context, after <-chan struct{}, locked func()) error
	// FastLanded is told each prepared batch's commit error, in the order
	// the batches were prepared, on the ledger's writer goroutine.
	FastLanded(ledgerID int64, err error)
}

// flight is a batch whose Commit runs in the background.
type flight struct {
	batch  []*submission
	n      int
	start  time.Time
	done   chan error
	cancel context.CancelFunc
	span   trace.Span // nil unless the batch serves a sampled request
	// locked is closed once a fast batch holds the ledger's lock, or its
	// Commit has returned.
	locked chan struct{}
}

// run is one ledger's writer loop. With a FastPreparer it overlaps
// batches (runFast); otherwise it takes whatever is queued (up to
// MaxItems) the moment the previous flush returns.
func (w *Writer) run(q *queue) {
	defer w.wg.Done()
	if fast, ok := w.store.(FastPreparer); ok {
		w.runFast(q, fast)
		return
	}
	var carry []*submission
	none := func() *flight { return nil }
	for {
		batch, n, ok := w.nextBatch(q, &carry, none, nil)
		if !ok {
			return
		}
		w.flush(q, batch, n)
	}
}

// nextBatch waits for the next batch and gathers it: the head of carry,
// else the queue, then what else is waiting. While a flight is in the
// air (oldest returns the one to land first, or nil), a landing that
// comes first is handled on the way (land, which also takes it out of
// the air). ok is false when the writer is closing and nothing is left to
// write.
func (w *Writer) nextBatch(q *queue, carry *[]*submission, oldest func() *flight,
	land func(error)) (batch []*submission, n int, ok bool) {
	for {
		var first *submission
		f := oldest()
		switch {
		case len(*carry) > 0:
			first, *carry = (*carry)[0], (*carry)[1:]
		case f != nil:
			select {
			case first = <-q.ch:
			case err := <-f.done:
				land(err)
				continue
			}
		default:
			select {
			case first = <-q.ch:
			case <-w.stopping:
				select {
				case first = <-q.ch: // drain before leaving
				default:
					return nil, 0, false
				}
			}
		}
		batch, n, *carry = w.gather(q, first, *carry)
		return batch, n, true
	}
}

// runFast is run for a Store that is a FastPreparer. Each batch is
// applied on the cache and committed in the background; the next one, if
// it is large enough, is prepared on the outcome of those in the air and
// starts inserting at once, up to OverlapFlights batches at a time, each
// taking the lock after the one ahead has taken it. Batches are answered
// in order, and batches prepared on the outcome of a failed one are
// settled after it.
func (w *Writer) runFast(q *queue, fast FastPreparer) {
	var carry []*submission
	var flights []*flight // oldest first
	oldest := func() *flight {
		if len(flights) == 0 {
			return nil
		}
		return flights[0]
	}
	landOldest := func(err error) { flights = w.landOldest(q, fast, flights, err) }
	for {
		batch, n, ok := w.nextBatch(q, &carry, oldest, landOldest)
		if !ok {
			return
		}
		if len(flights) > 0 && n < w.cfg.OverlapMin {
			carry = append(batch, carry...)
			landOldest(<-flights[0].done)
			continue
		}
		commit := fast.PrepareFast(q.ledgerID, unitsOf(batch))
		if commit == nil {
			for len(flights) > 0 {
				landOldest(<-flights[0].done)
			}
			w.flush(q, batch, n)
			continue
		}
		var after <-chan struct{}
		if len(flights) > 0 {
			after = flights[len(flights)-1].locked
		}
		flights = append(flights, w.startFast(commit, batch, n, after))
		for len(flights) >= w.cfg.OverlapFlights {
			landOldest(<-flights[0].done)
		}
	}
}

// landOldest lands flights[0], whose Commit returned err, and returns the
// flights still in the air. When it failed, every later flight was
// prepared on its outcome (and fails its guard, unless the outcome was
// unknown and it did commit): they are all waited for, then settled in
// order, so that the retries of the failed batch come first.
func (w *Writer) landOldest(q *queue, fast FastPreparer, flights []*flight, err error) []*flight {
	if err == nil {
		w.landFast(q, fast, flights[0], nil)
		return flights[1:]
	}
	errs := make([]error, len(flights))
	errs[0] = err
	for i := 1; i < len(flights); i++ {
		errs[i] = <-flights[i].done
	}
	for i, f := range flights {
		w.landFast(q, fast, f, errs[i])
	}
	return nil
}

// startFast runs a fast batch's Commit in the background. Its guard waits
// for after (the batch ahead holds the lock, or has finished).
func (w *Writer) startFast(commit func(context.Context, <-chan struct{}, func()) error, batch []*submission, n int, after <-chan struct{}) *flight {
	sctx, span := w.startFlush(batch, n, "fast")
	ctx, cancel := context.WithTimeout(sctx, w.cfg.FlushTimeout)
	f := &flight{batch: batch, n: n, start: time.Now(), done: make(chan error, 1), cancel: cancel, locked: make(chan struct{}),
		span: span}
	var once sync.Once
	open := func() { once.Do(func() { close(f.locked) }) }
	go func() {
		err := commit(ctx, after, open)
		open() // also when it failed: the batch behind must not wait for ever
		f.done <- err
	}()
	return f
}

// landFast answers a fast batch once its Commit has returned; a batch the
// fast path rolled back is written again on the slow path first.
func (w *Writer) landFast(q *queue, fast FastPreparer, f *flight, err error) {
	fast.FastLanded(q.ledgerID, err)
	w.metrics.fastLanded(err)
	if errors.Is(err, ledgerd.ErrFastPathRetry) {
		f.cancel()
		if f.span != nil {
			f.span.AddEvent("fast path rolled back; written on the slow path")
		}
		w.finish(q, f.batch, f.n, f.start, f.span, w.write(q, f.span, unitsOf(f.batch)))
		return
	}
	w.land(q, f, err)
}

// gather fills a batch after first: from carry (submissions put back by
// an earlier round) before the queue, up to MaxItems. It returns what is
// left to carry into the next batch.
func (w *Writer) gather(q *queue, first *submission, carry []*submission) ([]*submission, int, []*submission) {
	batch := []*submission{first}
	n := len(first.unit.Items)
	var timer <-chan time.Time
	if w.cfg.Window > 0 {
		timer = time.After(w.cfg.Window)
	}
	for n < w.cfg.MaxItems {
		var s *submission
		switch {
		case len(carry) > 0:
			s, carry = carry[0], carry[1:]
		case timer == nil:
			select {
			case s = <-q.ch:
			default:
				return batch, n, carry
			}
		default:
			select {
			case s = <-q.ch:
			case <-timer:
				return batch, n, carry
			}
		}
		if n+len(s.unit.Items) > w.cfg.MaxItems {
			return batch, n, append([]*submission{s}, carry...)
		}
		batch = append(batch, s)
		n += len(s.unit.Items)
	}
	return batch, n, carry
}

// land answers a flight once its Commit has returned.
func (w *Writer) land(q *queue, f *flight, err error) {
	f.cancel()
	if err != nil {
		err = w.resolve(q, err)
	}
	w.finish(q, f.batch, f.n, f.start, f.span, err)
}

func unitsOf(batch []*submission) []*ledgerd.WriteUnit {
	units := make([]*ledgerd.WriteUnit, len(batch))
	for i, s := range batch {
		units[i] = s.unit
	}
	return units
}

func (w *Writer) flush(q *queue, batch []*submission, n int) {
	_, span := w.startFlush(batch, n, "slow")
	start := time.Now()
	w.finish(q, batch, n, start, span, w.write(q, span, unitsOf(batch)))
}

// finish answers a batch's submitters with its outcome and ends its span.
func (w *Writer) finish(q *queue, batch []*submission, n int, start time.Time, span trace.Span, err error) {
	w.metrics.flushed(n, time.Since(start), err)
	if span != nil {
		defer span.End()
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "batch not committed as a whole")
		}
	}
	if err != nil {
		// Retry unit by unit (and a non-atomic unit item by item) only
		// after a known rollback, so that one poison item cannot block the
		// rest; unavailability and unknown outcomes are answered as such.
		if !errors.Is(err, ErrOverloaded) && !errors.Is(err, ErrClosed) {
			if errors.Is(err, ledgerd.ErrInvariant) {
				// A bug, never a client's doing: nothing of the batch was
				// written. Its items are retried alone, so that only
				// the one that breaks the invariant is refused (500).
				w.log.Error("INVARIANT VIOLATED: batch not written, retrying item by item", "ledger_id", q.ledgerID, "items", n, "err", err)
			} else {
				w.log.Warn("batch rolled back, retrying item by item", "ledger_id", q.ledgerID, "items", n, "err", err)
			}
			for _, s := range batch {
				s.done <- w.retry(q, span, s.unit)
				q.queued.Add(-int64(len(s.unit.Items)))
			}
			return
		}
	}
	for _, s := range batch {
		q.queued.Add(-int64(len(s.unit.Items)))
		s.done <- err
	}
}

// write runs one WriteBatch and turns its failure modes into ErrOverloaded
// (nothing knowably written) or a known rollback (returned as is).
// span, when set, is the parent of the database's spans.
func (w *Writer) write(q *queue, span trace.Span, units []*ledgerd.WriteUnit) error {
	ctx := context.Background()
	if span != nil {
		ctx = trace.ContextWithSpan(ctx, span)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.FlushTimeout)
	defer cancel()
	err := w.store.WriteBatch(ctx, q.ledgerID, units)
	if err == nil {
		return nil
	}
	return w.resolve(q, err)
}

// resolve turns a failed batch's error into what its submitters are told:
// nil when a commit of unknown outcome turns out to be in the database,
// ErrOverloaded when nothing is knowably written, or the error itself
// for a known rollback.
func (w *Writer) resolve(q *queue, err error) error {
	ledgerID := q.ledgerID
	if errors.Is(err, ledgerd.ErrCommitUnknown) {
		// Ask a fresh connection whether the batch's first transaction is
		// there. Only a yes is an answer; anything else is a 503, and the
		// clients' retries with their keys settle it.
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		if committed, ok := w.store.BatchCommitted(cctx, err); ok && committed {
			w.log.Warn("commit outcome was unknown; the batch is committed", "ledger_id", ledgerID)
			return nil
		}
		w.log.Error("commit outcome unknown; answering 503", "ledger_id", ledgerID, "err", err)
		return ErrOverloaded
	}
	if errors.Is(err, ledgerd.ErrUnavailable) {
		w.log.Warn("database unavailable; batch not written", "ledger_id", ledgerID, "err", err)
		return ErrOverloaded
	}
	return err
}

// retry writes one unit after its batch rolled back. An atomic unit is
// retried whole; a non-atomic one item by item, in order.
func (w *Writer) retry(q *queue, span trace.Span, u *ledgerd.WriteUnit) error {
	ledgerID := q.ledgerID
	if u.Atomic || len(u.Items) == 1 {
		w.metrics.retried()
		err := w.write(q, span, []*ledgerd.WriteUnit{u})
		if err == nil || errors.Is(err, ErrOverloaded) {
			return err
		}
		for _, it := range u.Items {
			w.deadLetter(ledgerID, it, err)
		}
		return nil
	}
	// The request's audit entry goes with the first item that commits a
	// change.
	audit := u.Audit
	for _, it := range u.Items {
		single := &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{it}, Audit: audit}
		w.metrics.retried()
		err := w.write(q, span, []*ledgerd.WriteUnit{single})
		if err == nil && it.Result != nil && !it.Replayed {
			audit = nil
		}
		if errors.Is(err, ErrOverloaded) {
			it.Result, it.Replayed = nil, false
			it.Err = ledgerd.Errorf(ledgerd.CodeOverloaded, "the database is unavailable; retry with the same Idempotency-Key")
			continue
		}
		if err != nil {
			w.deadLetter(ledgerID, it, err)
		}
	}
	return nil
}

// deadLetter answers an item that failed on its own and keeps it for
// diagnosis. It is never replayed automatically.
func (w *Writer) deadLetter(ledgerID int64, it *ledgerd.WriteItem, cause error) {
	it.Result, it.Replayed = nil, false
	if errors.Is(cause, ledgerd.ErrKeyTaken) {
		it.Err = ledgerd.Errorf(ledgerd.CodeIdempotencyInProgress, "another request with this Idempotency-Key is in progress")
		return
	}
	it.Err = ledgerd.Errorf(ledgerd.CodeInternal, "the transaction could not be written; it was kept for diagnosis")
	w.metrics.deadLettered()
	w.log.Error("dead letter", "ledger_id", ledgerID, "err", cause)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.store.InsertDeadLetter(ctx, ledgerID, it.IdempotencyKey, w.encode(it.Request), cause.Error()); err != nil {
		w.log.Error("could not store dead letter", "ledger_id", ledgerID, "err", err)
	}
}
