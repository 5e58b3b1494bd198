package postgres

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports pgxpool's statistics at scrape time, so that pool
// utilisation (acquired / max; alert at 70 %) and acquire waits are visible,
// and the last database size sample (SampleStatsEvery): a scrape never
// queries the database.
type poolCollector struct {
	db                                          *DB
	acquired, idle, max, total, utilisation     *prometheus.Desc
	acquireCount, acquireWait, emptyAcquire     *prometheus.Desc
	canceledAcquire, newConns, destroyedMaxIdle *prometheus.Desc
	acquireTimeouts                             *prometheus.Desc
	partitions, partitionRows, pendingHolds     *prometheus.Desc
	sampleAge                                   *prometheus.Desc
}

// RegisterMetrics registers the pool's and the database's metrics on reg.
func (db *DB) RegisterMetrics(reg prometheus.Registerer) {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ledgerd_db_"+name, help, labels, nil)
	}
	wait := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ledgerd_db_pool_acquire_duration_seconds",
		Help:    "Time to acquire a connection from the pool, successful or not.",
		Buckets: []float64{.00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 2, 5},
	})
	reg.MustRegister(wait)
	db.acquireWait.Store(&wait)
	reg.MustRegister(&poolCollector{db: db,
		acquired:         d("pool_acquired_connections", "Connections in use."),
		idle:             d("pool_idle_connections", "Idle connections."),
		max:              d("pool_max_connections", "Pool size limit."),
		total:            d("pool_total_connections", "Open connections."),
		utilisation:      d("pool_utilisation_ratio", "Connections in use over the pool size limit (alert above 0.7)."),
		acquireCount:     d("pool_acquires_total", "Successful acquires."),
		acquireWait:      d("pool_acquire_wait_seconds_total", "Total time spent waiting for a connection."),
		emptyAcquire:     d("pool_empty_acquires_total", "Acquires that had to wait because no connection was idle."),
		canceledAcquire:  d("pool_canceled_acquires_total", "Acquires given up (a timeout or a client that left)."),
		acquireTimeouts:  d("pool_acquire_timeouts_total", "Acquires that waited longer than LEDGERD_POOL_ACQUIRE_TIMEOUT (each answered 503)."),
		newConns:         d("pool_new_connections_total", "Connections opened."),
		destroyedMaxIdle: d("pool_idle_closed_connections_total", "Connections closed for being idle too long."),
		partitions:       d("partitions", "Partitions of each partitioned table.", "table"),
		partitionRows:    d("partition_rows_estimate", "Rows per partition as the planner estimates them (pg_class.reltuples), sampled.", "table", "partition"),
		pendingHolds:     d("holds_pending", "Holds outstanding with a deadline, sampled."),
		sampleAge:        d("stats_sample_age_seconds", "Age of the database size sample the partition and hold metrics come from."),
	})
	reg.MustRegister(newAuditCollector(db))
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.max, c.total, c.utilisation, c.acquireCount,
		c.acquireWait, c.emptyAcquire, c.canceledAcquire, c.acquireTimeouts, c.newConns, c.destroyedMaxIdle,
		c.partitions, c.partitionRows, c.pendingHolds, c.sampleAge} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Pool.Stat()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.max, float64(s.MaxConns()))
	g(c.total, float64(s.TotalConns()))
	if s.MaxConns() > 0 {
		g(c.utilisation, float64(s.AcquiredConns())/float64(s.MaxConns()))
	}
	k(c.acquireCount, float64(s.AcquireCount()))
	k(c.acquireWait, s.AcquireDuration().Seconds())
	k(c.emptyAcquire, float64(s.EmptyAcquireCount()))
	k(c.canceledAcquire, float64(s.CanceledAcquireCount()))
	k(c.acquireTimeouts, float64(c.db.acquireTimeouts.Load()))
	k(c.newConns, float64(s.NewConnsCount()))
	k(c.destroyedMaxIdle, float64(s.MaxIdleDestroyCount()))
	st := c.db.stats.Load()
	if st == nil {
		return
	}
	counts := map[string]int{}
	for _, p := range st.Partitions {
		counts[p.Table]++
		g(c.partitionRows, p.Rows, p.Table, p.Partition)
	}
	for _, t := range partitioned {
		g(c.partitions, float64(counts[t]), t)
	}
	g(c.pendingHolds, float64(st.PendingHolds))
	g(c.sampleAge, time.Since(st.At).Seconds())
}
