package httpapi

import (
	"strconv"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Metrics are the API's Prometheus metrics: aggregated per route, never per
// request or per account, so their cost does not grow with traffic.
type Metrics struct {
	requests *prometheus.HistogramVec
	posted   prometheus.Counter
	rejected *prometheus.CounterVec
	volume   *prometheus.CounterVec
	assets   assetLabels
	// bodyBytes is the node's body budget in use (LEDGERD_BODY_BUDGET).
	bodyBytes prometheus.Gauge
	// limit and shed are the adaptive concurrency limit and the requests
	// it refused.
	limit prometheus.Gauge
	shed  prometheus.Counter
	// rateLimitFallbacks counts rate-limit decisions taken locally because
	// the shared store (Redis) did not answer.
	rateLimitFallbacks prometheus.Counter
}

// assetLabels bounds the asset label of the volume metric: every writer
// chooses asset codes, and each new label value is a series kept forever
// by the node and by Prometheus. Either the operator lists the assets
// (LEDGERD_METRIC_ASSETS) or the first maxAssetLabels seen are named; the
// rest are summed as "other".
type assetLabels struct {
	names sync.Map // asset → struct{}: read on every posting, without a lock
	mu    sync.Mutex
	fixed bool // the list is the operator's: never add to it
	n     int
}

const (
	maxAssetLabels   = 32
	otherAssetsLabel = "other"
)

func (a *assetLabels) label(asset string) string {
	if _, ok := a.names.Load(asset); ok {
		return asset
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.names.Load(asset); ok {
		return asset
	}
	if a.fixed || a.n >= maxAssetLabels || asset == otherAssetsLabel {
		return otherAssetsLabel
	}
	a.names.Store(asset, struct{}{})
	a.n++
	return asset
}

// limitAssets names exactly these assets in the volume metric (none: the
// first ones seen).
func (m *Metrics) limitAssets(assets []string) {
	if m == nil || len(assets) == 0 {
		return
	}
	m.assets.mu.Lock()
	defer m.assets.mu.Unlock()
	m.assets.fixed = true
	m.assets.names.Clear()
	for _, a := range assets {
		m.assets.names.Store(a, struct{}{})
	}
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
			Help: "Sum of posted amounts by asset, in minor units (assets beyond the configured or first 32 as \"other\").",
		}, []string{"asset"}),
		bodyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledgerd_http_body_bytes_in_flight",
			Help: "Bytes of request bodies held by the node, against LEDGERD_BODY_BUDGET.",
		}),
		limit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledgerd_http_concurrency_limit",
			Help: "Requests the node admits at once (adaptive, LEDGERD_CONCURRENCY_*).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_http_shed_total",
			Help: "Requests answered 503 overloaded at once because the concurrency limit was reached.",
		}),
		rateLimitFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerd_rate_limit_fallback_total",
			Help: "Rate-limit decisions taken by the node alone because the shared store (REDIS_URL) failed.",
		}),
	}
	reg.MustRegister(m.requests, m.posted, m.rejected, m.volume, m.bodyBytes, m.limit, m.shed, m.rateLimitFallbacks)
	return m
}

// observeRequest records a request's latency; a sampled request's trace id
// rides along as the bucket's exemplar, so that a latency panel leads to a
// trace of a request that landed in that bucket.
func (m *Metrics) observeRequest(route string, status int, d time.Duration, sc trace.SpanContext) {
	if m == nil {
		return
	}
	o := m.requests.WithLabelValues(route, strconv.Itoa(status))
	if sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	o.Observe(d.Seconds())
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
			m.volume.WithLabelValues(m.assets.label(p.Asset)).Add(float64(p.Amount))
		}
	}
}

func (m *Metrics) observeLimit(n int) {
	if m != nil {
		m.limit.Set(float64(n))
	}
}

func (m *Metrics) observeShed() {
	if m != nil {
		m.shed.Inc()
	}
}

func (m *Metrics) observeRateLimitFallback() {
	if m != nil {
		m.rateLimitFallbacks.Inc()
	}
}
