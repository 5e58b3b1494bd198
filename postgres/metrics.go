package postgres

import (
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports pgxpool's statistics at scrape time, so that pool
// utilisation (acquired / max; alert at 70 %) and acquire waits are visible.
type poolCollector struct {
	db                                          *DB
	acquired, idle, max, total, utilisation     *prometheus.Desc
	acquireCount, acquireWait, emptyAcquire     *prometheus.Desc
	canceledAcquire, newConns, destroyedMaxIdle *prometheus.Desc
}

// RegisterMetrics registers the pool's metrics on reg.
func (db *DB) RegisterMetrics(reg prometheus.Registerer) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("ledgerd_db_pool_"+name, help, nil, nil)
	}
	reg.MustRegister(&poolCollector{db: db,
		acquired:         d("acquired_connections", "Connections in use."),
		idle:             d("idle_connections", "Idle connections."),
		max:              d("max_connections", "Pool size limit."),
		utilisation:      d("utilisation", "Connections in use / pool size (alert above 0.7: the pool is the next bottleneck)."),
		total:            d("total_connections", "Open connections."),
		acquireCount:     d("acquires_total", "Successful acquires."),
		acquireWait:      d("acquire_wait_seconds_total", "Total time spent waiting for a connection."),
		emptyAcquire:     d("empty_acquires_total", "Acquires that had to wait because no connection was idle."),
		canceledAcquire:  d("canceled_acquires_total", "Acquires given up (timeout: answered 503)."),
		newConns:         d("new_connections_total", "Connections opened."),
		destroyedMaxIdle: d("idle_closed_connections_total", "Connections closed for being idle too long."),
	})
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.max, c.total, c.utilisation, c.acquireCount, c.acquireWait,
		c.emptyAcquire, c.canceledAcquire, c.newConns, c.destroyedMaxIdle} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.max, float64(s.MaxConns()))
	g(c.utilisation, float64(s.AcquiredConns())/float64(max(s.MaxConns(), 1)))
	g(c.total, float64(s.TotalConns()))
	k(c.acquireCount, float64(s.AcquireCount()))
	k(c.acquireWait, s.AcquireDuration().Seconds())
	k(c.emptyAcquire, float64(s.EmptyAcquireCount()))
	k(c.canceledAcquire, float64(s.CanceledAcquireCount()))
	k(c.newConns, float64(s.NewConnsCount()))
	k(c.destroyedMaxIdle, float64(s.MaxIdleDestroyCount()))
}
