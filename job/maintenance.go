package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// MaintenanceStore measures index bloat and rebuilds indexes;
// *postgres.DB is one. A Store that is not one runs no maintenance.
type MaintenanceStore interface {
	IndexEstimates(ctx context.Context) ([]postgres.IndexEstimate, error)
	ReindexStep(ctx context.Context, p postgres.ReindexPolicy) (postgres.ReindexResult, error)
}

// MaintenanceConfig tunes index maintenance. Zero values take the
// defaults.
type MaintenanceConfig struct {
	// Window is when rebuilds may start (default 02:00-05:00 UTC).
	// Outside it the job only measures.
	Window Window
	// MinRatio and MinBytes: an index is rebuilt once its estimated bloat
	// is at least both. Defaults 0.5 and 64 MiB: a smaller index costs
	// little to scan however sparse, and an index filled in random key
	// order already estimates at 0.2-0.4 (its pages split to about 70 %),
	// so only one at least twice its compact size is rebuilt.
	MinRatio float64
	MinBytes int64
	// Interval is how often the job measures, and looks for an index to
	// rebuild while the window is open. Default 10 minutes.
	Interval time.Duration
}

func (c *MaintenanceConfig) defaults() {
	if !c.Window.set {
		c.Window = DefaultMaintenanceWindow
	}
	if c.MinRatio <= 0 {
		c.MinRatio = 0.5
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 64 << 20
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Minute
	}
}

// Window is a daily span of UTC time. A span that ends before it starts
// runs past midnight (22:00-04:00).
type Window struct {
	set      bool
	off      bool
	from, to time.Duration // since midnight UTC
}

// DefaultMaintenanceWindow is 02:00-05:00 UTC.
var DefaultMaintenanceWindow = Window{set: true, from: 2 * time.Hour, to: 5 * time.Hour}

// AlwaysOpen is a window open at every hour (tests, or a ledger with no
// quiet hours).
var AlwaysOpen = Window{set: true, from: 0, to: 24 * time.Hour}

// NeverOpen is a window that is never open: the job measures but never
// rebuilds.
var NeverOpen = Window{set: true, off: true}

// ParseWindow reads "HH:MM-HH:MM" (UTC), "always" or "off".
func ParseWindow(s string) (Window, error) {
	switch strings.TrimSpace(s) {
	case "always":
		return AlwaysOpen, nil
	case "off":
		return NeverOpen, nil
	}
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("%q: want HH:MM-HH:MM (UTC), always or off", s)
	}
	f, err1 := clock(from)
	t, err2 := clock(to)
	if err1 != nil || err2 != nil {
		return Window{}, fmt.Errorf("%q: want HH:MM-HH:MM (UTC), always or off", s)
	}
	if f == t {
		return Window{}, fmt.Errorf("%q: an empty window (use off)", s)
	}
	return Window{set: true, from: f, to: t}, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * time.Hour, nil
		}
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Contains reports whether the window is open at t.
func (w Window) Contains(t time.Time) bool {
	if w.off {
		return false
	}
	t = t.UTC()
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if w.from < w.to {
		return d >= w.from && d < w.to
	}
	return d >= w.from || d < w.to
}

// String is the window as ParseWindow reads it.
func (w Window) String() string {
	switch {
	case w.off:
		return "off"
	case w.from == 0 && w.to == 24*time.Hour:
		return "always"
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(w.from) + "-" + f(w.to)
}

type maintenanceMetrics struct {
	rebuilds *prometheus.CounterVec
	bloat    *prometheus.GaugeVec
}

func newMaintenanceMetrics(reg prometheus.Registerer) *maintenanceMetrics {
	m := &maintenanceMetrics{
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_maintenance_reindex_total",
			Help: "Index rebuilds (REINDEX INDEX CONCURRENTLY) this worker ran, by outcome: rebuilt, failed, leftover_dropped (the remains of an interrupted rebuild)."},
			[]string{"outcome"}),
		// Per partitioned table rather than per partition or index: a
		// bounded set, whatever the months online.
		bloat: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ledgerd_maintenance_index_bloat_bytes",
			Help: "Estimated bloat of the B-tree indexes of each table (partitions summed into their table), in bytes (sampled by the maintenance job)."},
			[]string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.rebuilds, m.bloat)
	}
	return m
}

func (m *maintenanceMetrics) observe(es []postgres.IndexEstimate) {
	sums := map[string]float64{}
	for _, e := range es {
		sums[e.Root] += float64(e.BloatBytes)
	}
	m.bloat.Reset()
	for t, v := range sums {
		m.bloat.WithLabelValues(t).Set(v)
	}
}

// traceTrimmer deletes stored trace contexts (job/trace.go) past the
// delivery log's retention; *postgres.DB is one.
type traceTrimmer interface {
	DeleteTracesBefore(ctx context.Context, t time.Time, limit int) (int64, error)
}

// maintainLoop measures index bloat every Interval and, while the window
// is open, rebuilds the worst index past the thresholds, one after the
// other (each step at most one, and one worker at a time across workers).
// A rebuild started in the window may run past its end. Every Interval it
// also deletes the trace contexts older than the delivery log's retention.
func (w *Worker) maintainLoop(ctx context.Context) {
	store, ok := w.store.(MaintenanceStore)
	if !ok {
		return
	}
	cfg := w.cfg.Maintenance
	cfg.defaults()
	m := newMaintenanceMetrics(w.cfg.Registerer)
	log := w.log.With("component", "maintenance")
	policy := postgres.ReindexPolicy{MinRatio: cfg.MinRatio, MinBytes: cfg.MinBytes, Holder: holderName()}
	for ctx.Err() == nil {
		if tt, ok := w.store.(traceTrimmer); ok {
			for range 100 {
				n, err := tt.DeleteTracesBefore(ctx, time.Now().Add(-w.cfg.Retention), 10_000)
				if err != nil || n < 10_000 {
					break
				}
			}
		}
		if !cfg.Window.Contains(time.Now()) {
			es, err := store.IndexEstimates(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("estimate index bloat", "err", err)
			} else if err == nil {
				m.observe(es)
			}
			sleep(ctx, cfg.Interval)
			continue
		}
		res, err := store.ReindexStep(ctx, policy)
		if res.Estimates != nil {
			m.observe(res.Estimates)
		}
		m.rebuilds.WithLabelValues("leftover_dropped").Add(float64(len(res.Dropped)))
		for _, d := range res.Dropped {
			log.Warn("dropped the leftover of an interrupted rebuild", "index", d)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			m.rebuilds.WithLabelValues("failed").Inc()
			log.Error("rebuild an index", "err", err)
		case res.Rebuilt != nil:
			m.rebuilds.WithLabelValues("rebuilt").Inc()
			log.Info("index rebuilt", "index", res.Rebuilt.Index, "table", res.Rebuilt.Table,
				"bytes_before", res.Rebuilt.Bytes, "bloat_bytes_before", res.Rebuilt.BloatBytes, "took", res.Took.String())
			continue // the next one, if any, while the window is open
		}
		sleep(ctx, cfg.Interval)
	}
}

// holderName names this worker in the lease: host, pid and a random
// suffix, so that two workers never mistake each other's lease.
func holderName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
