package job

import "github.com/prometheus/client_golang/prometheus"

// metrics of the tail. Lag and backlog are sampled from the database every
// few seconds (they are the same for every worker); counts of attempts are
// this worker's own.
type metrics struct {
	lagEvents    *prometheus.GaugeVec
	lagSeconds   *prometheus.GaugeVec
	relayed      *prometheus.CounterVec
	deliveries   *prometheus.GaugeVec
	disabled     prometheus.Gauge
	inFlight     prometheus.Gauge
	pace         prometheus.Gauge
	apiInFlight  prometheus.Gauge
	attempts     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	latency      prometheus.Histogram
	deadLetters  prometheus.Counter
	deliveredCnt prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ledgerd_tail_events_pending",
			Help: "Events committed but not yet relayed, per consumer (sampled)."}, []string{"consumer"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ledgerd_tail_lag_seconds",
			Help: "Age of the oldest event not yet relayed, per consumer, in seconds since its commit (sampled)."}, []string{"consumer"}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_tail_relayed_events_total",
			Help: "Events relayed by this worker, per consumer."}, []string{"consumer"}),
		deliveries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ledgerd_webhook_deliveries",
			Help: "Webhook deliveries by state: pending (waiting or in flight) and failed (dead letters), sampled."}, []string{"state"}),
		disabled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgerd_webhook_endpoints_disabled",
			Help: "Webhook endpoints that are disabled (by PATCH or after a 410), sampled."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgerd_webhook_attempts_in_flight",
			Help: "Delivery attempts this worker is making now."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_webhook_attempts_total",
			Help: "Delivery attempts by outcome: delivered, retry, gone (410), dead_letter (failed, no attempt left), released (cut short by shutdown)."},
			[]string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ledgerd_webhook_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, by outcome, in seconds.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ledgerd_webhook_delivery_latency_seconds",
			Help:    "From an event's commit to the receiver's 2xx, in seconds.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400}}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_webhook_dead_letters_total",
			Help: "Deliveries this worker dead-lettered (out of attempts, or 410)."}),
		deliveredCnt: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_webhook_delivered_total",
			Help: "Deliveries this worker completed with a 2xx."}),
		pace: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgerd_tail_pace_factor",
			Help: "How long the tail's loops rest after each step, as a multiple of the step's duration: 0 while the database and the request path have room, up to 32 while the request path keeps them busy (job/pace.go)."}),
		apiInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgerd_tail_api_inflight_transactions",
			Help: "Transactions the API nodes' write paths hold in flight (submitted, not yet answered; averaged over each node's last 100 ms), as the tail sees them; above LEDGERD_TAIL_YIELD_INFLIGHT the tail rests."}),
	}
	if reg != nil {
		reg.MustRegister(m.lagEvents, m.lagSeconds, m.relayed, m.deliveries, m.disabled, m.inFlight, m.attempts,
			m.duration, m.latency, m.deadLetters, m.deliveredCnt, m.pace, m.apiInFlight)
	}
	return m
}
