package batch

import (
	"errors"
	"time"

	"github.com/ledgerd/ledgerd"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the writer's Prometheus metrics.
type Metrics struct {
	reg      prometheus.Registerer
	size     prometheus.Histogram
	duration prometheus.Histogram
	failures *prometheus.CounterVec
	// fastCommits and fastRetries count fast-path batches (see
	// FastPreparer): committed in one round trip, or rolled back and
	// written again on the slow path.
	fastCommits, fastRetries prometheus.Counter
	// queueWait is how long a submission waited for its batch to start.
	queueWait prometheus.Histogram
	// retries counts units written again alone after their batch rolled
	// back; deadLetters the items that then failed alone.
	retries, deadLetters prometheus.Counter
}

// NewMetrics registers the writer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reg: reg,
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledgerd_batch_size_transactions",
			Help:    "Transactions per group-commit batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10000},
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledgerd_batch_flush_duration_seconds",
			Help:    "Time to write and commit one batch, from the first statement to COMMIT's return.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 15),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerd_batch_failures_total",
			Help: "Batches that did not commit as a whole, by reason (unavailable, rollback).",
		}, []string{"reason"}),
		fastCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_batch_fast_path_commits_total",
			Help: "Batches committed in one round trip on the writer's cached state (postgres/fastpath.go).",
		}),
		fastRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_batch_fast_path_retries_total",
			Help: "Fast path attempts rolled back and written again on the slow path (a key or reference existed, or another writer had written the ledger).",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledgerd_batch_queue_wait_seconds",
			Help:    "Time a submission waited in its ledger's queue before its batch started writing.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_batch_item_retries_total",
			Help: "Units (an atomic batch, or one item) written again on their own after their batch rolled back.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_batch_dead_letters_total",
			Help: "Items that failed on their own after a rollback and were kept in dead_letters (answered 500).",
		}),
	}
	// Both reasons exist from the start: a rate over a series that
	// appears with the first failure misses that failure.
	m.failures.WithLabelValues("unavailable")
	m.failures.WithLabelValues("rollback")
	reg.MustRegister(m.size, m.duration, m.failures, m.fastCommits, m.fastRetries, m.queueWait, m.retries, m.deadLetters)
	return m
}

// registerQueued exports the transactions waiting in all of w's queues,
// read at scrape time.
func (m *Metrics) registerQueued(reg prometheus.Registerer, w *Writer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledgerd_batch_queued_transactions",
		Help: "Transactions submitted and not yet answered, over every ledger's queue.",
	}, func() float64 { return float64(w.queued()) }))
}

func (m *Metrics) waited(d time.Duration) {
	if m != nil {
		m.queueWait.Observe(d.Seconds())
	}
}

func (m *Metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}

func (m *Metrics) deadLettered() {
	if m != nil {
		m.deadLetters.Inc()
	}
}

// flushed records one flushed batch. A nil *Metrics records nothing.
func (m *Metrics) flushed(items int, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.size.Observe(float64(items))
	m.duration.Observe(d.Seconds())
	switch {
	case err == nil:
	case err == ErrOverloaded:
		m.failures.WithLabelValues("unavailable").Inc()
	default:
		m.failures.WithLabelValues("rollback").Inc()
	}
}

// fastLanded records the outcome of a fast-path batch's commit.
func (m *Metrics) fastLanded(err error) {
	switch {
	case m == nil:
	case err == nil:
		m.fastCommits.Inc()
	case errors.Is(err, ledgerd.ErrFastPathRetry):
		m.fastRetries.Inc()
	}
}
