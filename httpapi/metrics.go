package httpapi

import (
	"strconv"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus metrics: aggregated per route, never per
// request or per account, so their cost does not grow with traffic.
type Metrics struct {
	requests *prometheus.HistogramVec
	posted   prometheus.Counter
	rejected *prometheus.CounterVec
	volume   *prometheus.CounterVec
}

// NewMetrics registers the API's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledgerd_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}, []string{"route", "code"}),
		posted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_transactions_posted_total",
			Help: "Transactions committed (replays not counted).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerd_transactions_rejected_total",
			Help: "Transaction requests and batch items rejected, by error code.",
		}, []string{"code"}),
		volume: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerd_posted_volume_minor_units_total",
			Help: "Sum of posted amounts by asset, in minor units.",
		}, []string{"asset"}),
	}
	reg.MustRegister(m.requests, m.posted, m.rejected, m.volume)
	return m
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// observeItem counts one transaction outcome.
func (m *Metrics) observeItem(it *ledgerd.WriteItem, err *ledgerd.Error) {
	if m == nil {
		return
	}
	switch {
	case err != nil:
		m.rejected.WithLabelValues(string(err.Code)).Inc()
	case it != nil && it.Result != nil && !it.Replayed:
		m.posted.Inc()
		for _, p := range it.Request.Postings {
			m.volume.WithLabelValues(p.Asset).Add(float64(p.Amount))
		}
	}
}
