package batch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the writer's Prometheus metrics.
type Metrics struct {
	size     prometheus.Histogram
	duration prometheus.Histogram
	failures *prometheus.CounterVec
}

// NewMetrics registers the writer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
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
	}
	reg.MustRegister(m.size, m.duration, m.failures)
	return m
}

// Observer returns the hook New takes.
func (m *Metrics) Observer() Observer {
	return func(_ int64, items int, d time.Duration, err error) {
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
}
