package postgres

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// auditCollector exports the audit chain lag from the last stats sample
// (SampleStatsEvery): how many entries no chainer has linked yet, and how
// old the oldest of them is. A growing lag means no chainer runs, or it
// cannot keep up.
type auditCollector struct {
	db           *DB
	entries, age *prometheus.Desc
}

func newAuditCollector(db *DB) *auditCollector {
	return &auditCollector{db: db,
		entries: prometheus.NewDesc("ledgerd_audit_chain_lag_entries", "Audit entries not chained yet.", nil, nil),
		age:     prometheus.NewDesc("ledgerd_audit_chain_lag_seconds", "Age of the oldest audit entry not chained yet (0 when none).", nil, nil),
	}
}

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.age }

func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.stats.Load() // the periodic sample: a scrape never queries
	if st == nil {
		return
	}
	age := 0.0
	if !st.AuditOldest.IsZero() {
		age = time.Since(st.AuditOldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.AuditUnchained))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
