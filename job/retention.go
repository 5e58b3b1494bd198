package job

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// RetentionStore deletes old rows of the side tables; *postgres.DB is
// one. A Store that is not one trims only its delivered deliveries.
type RetentionStore interface {
	DeleteOld(ctx context.Context, table postgres.RetainedTable, before time.Time, limit int) (int64, error)
	TrimAudit(ctx context.Context, before time.Time, limit int) (int64, error)
	DeleteArchived(ctx context.Context, table postgres.RetainedTable, endedBefore time.Time, limit int) (int64, error)
}

// RetentionConfig is how long each side table keeps its rows
// (docs/data-lifecycle.md §Retention of the side tables). A zero age
// takes its default; a negative one keeps the table's rows forever.
type RetentionConfig struct {
	Events           time.Duration // default 90 days
	Audit            time.Duration // default 400 days
	DeadLetters      time.Duration // default 30 days
	FailedDeliveries time.Duration // default 30 days
	Risk             time.Duration // default 180 days
	Traces           time.Duration // default 7 days
	Emails           time.Duration // default 30 days
	// References is how long the references of an archived month stay
	// taken after the month ended (default 400 days); those of months in
	// the database are always kept.
	References time.Duration
	// Interval is how often a pass runs (default 1 hour); Batch bounds
	// the rows one statement deletes (default 10,000), so that no delete
	// holds locks or grows WAL for long.
	Interval time.Duration
	Batch    int
}

const day = 24 * time.Hour

func (c *RetentionConfig) defaults() {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.Events, 90 * day}, {&c.Audit, 400 * day}, {&c.DeadLetters, 30 * day}, {&c.FailedDeliveries, 30 * day},
		{&c.Risk, 180 * day}, {&c.Traces, 7 * day}, {&c.Emails, 30 * day}, {&c.References, 400 * day},
		{&c.Interval, time.Hour}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Batch <= 0 {
		c.Batch = 10_000
	}
}

func (c *RetentionConfig) age(t postgres.RetainedTable) time.Duration {
	switch t {
	case postgres.RetainEvents:
		return c.Events
	case postgres.RetainDeadLetters:
		return c.DeadLetters
	case postgres.RetainFailedDeliveries:
		return c.FailedDeliveries
	case postgres.RetainRisk:
		return c.Risk
	case postgres.RetainTraces:
		return c.Traces
	case postgres.RetainEmails:
		return c.Emails
	}
	return -1
}

// maxStatements bounds one table's statements in one pass: a backlog
// larger than that (10 M rows at the default batch) waits for the next
// pass rather than holding the loop.
const maxStatements = 1000

// newRetentionMetric counts deleted rows per table. The label takes the
// few fixed names of postgres.RetainedTables and ArchivedTables,
// "audit_log" and "webhook_deliveries_delivered".
func newRetentionMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_retention_deleted_rows_total",
		Help: "Rows deleted by retention, per table."}, []string{"table"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			// serve runs its tail on the registry of its API metrics: a
			// second tail in one process shares the first one's counter.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				c = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return c
}

// retentionLoop runs a retention pass every Interval, the first one an
// Interval after the start (a fleet restarting together does not delete
// at once).
func (w *Worker) retentionLoop(ctx context.Context) {
	deleted := newRetentionMetric(w.cfg.Registerer)
	keep := w.cfg.Keep
	keep.defaults()
	for {
		sleep(ctx, keep.Interval)
		if ctx.Err() != nil {
			return
		}
		w.retainPass(ctx, time.Now(), deleted)
	}
}

// retainPass deletes, table by table, every row older than its
// retention at now, in statements of at most Batch rows.
func (w *Worker) retainPass(ctx context.Context, now time.Time, deleted *prometheus.CounterVec) {
	keep := w.cfg.Keep
	keep.defaults()
	batch := keep.Batch
	drain := func(table string, del func(before time.Time) (int64, error), age time.Duration) {
		if age < 0 {
			return
		}
		for range maxStatements {
			n, err := del(now.Add(-age))
			deleted.WithLabelValues(table).Add(float64(n))
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("retention", "table", table, "err", err)
				}
				return
			}
			if n < int64(batch) {
				return
			}
		}
	}
	drain("webhook_deliveries_delivered", func(before time.Time) (int64, error) {
		return w.store.DeleteDeliveredBefore(ctx, before, batch)
	}, w.cfg.Retention)
	rs, ok := w.store.(RetentionStore)
	if !ok {
		return
	}
	for _, t := range postgres.RetainedTables {
		drain(string(t), func(before time.Time) (int64, error) { return rs.DeleteOld(ctx, t, before, batch) }, keep.age(t))
	}
	drain("audit_log", func(before time.Time) (int64, error) { return rs.TrimAudit(ctx, before, batch) }, keep.Audit)
	// Rows of dropped months go with them, whatever their age; references
	// only once their own retention has passed.
	for _, t := range postgres.ArchivedTables {
		age := time.Duration(0)
		if t == postgres.RetainReferences {
			age = keep.References
		}
		drain(string(t), func(before time.Time) (int64, error) { return rs.DeleteArchived(ctx, t, before, batch) }, age)
	}
}
