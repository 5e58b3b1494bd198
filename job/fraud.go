package job

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// FraudStore scores transactions from the log; *postgres.DB is one. A
// Store that is not one scores nothing.
type FraudStore interface {
	FraudStep(ctx context.Context, limit int, memo *postgres.FraudMemo) (postgres.FraudStepResult, error)
	FraudLag(ctx context.Context) (transactions int64, seconds float64, err error)
}

// fraudTail scores every ledger with fraud rules (docs/fraud.md). Workers
// share the ledgers: each step takes one ledger's cursor with SKIP
// LOCKED. What it keeps between steps (memo) is a cache the store checks
// against the cursor, so a restarted worker, or another one, goes on from
// the cursor and the log alone and judges the same.
type fraudTail struct {
	store FraudStore
	memo  *postgres.FraudMemo
	poll  time.Duration
	batch int
	m     *fraudMetrics
	log   *slog.Logger
	pace  *pacer
}

// runFraud scores until ctx ends, when the worker's store can.
func (w *Worker) runFraud(ctx context.Context) {
	fs, ok := w.store.(FraudStore)
	if !ok {
		return
	}
	t := &fraudTail{store: fs, memo: postgres.NewFraudMemo(fraudMemoDebits), poll: w.cfg.Poll, batch: w.cfg.RelayBatch, m: newFraudMetrics(w.cfg.Registerer), pace: w.pace,
		log: w.log.With("component", "fraud")}
	// The backlog, as the relay's: ledgerd_tail_*{consumer="fraud"}, so
	// that LedgerdQueueAge covers scoring too.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ctx.Err() == nil {
			if n, s, err := fs.FraudLag(ctx); err == nil {
				w.m.lagEvents.WithLabelValues(postgres.FraudConsumer).Set(float64(n))
				w.m.lagSeconds.WithLabelValues(postgres.FraudConsumer).Set(s)
				w.pace.fellBehind(postgres.FraudConsumer, time.Duration(s*float64(time.Second)))
			} else if ctx.Err() == nil {
				t.log.Warn("sample scoring lag", "err", err)
			}
			sleep(ctx, 5*time.Second)
		}
	})
	t.run(ctx)
}

// fraudMemoDebits bounds a worker's memory of accounts' debits: about
// 40 MB.
const fraudMemoDebits = 1 << 20

func (t *fraudTail) run(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		r, err := t.store.FraudStep(ctx, t.batch, t.memo)
		worked := time.Since(start)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Error("score transactions", "err", err)
			}
			sleep(ctx, t.poll)
			continue
		}
		if r.Ledger != "" {
			for _, s := range r.Scores {
				t.m.scores.Observe(float64(s))
			}
			t.m.scored.WithLabelValues(r.Ledger).Add(float64(len(r.Scores)))
			t.m.flags.WithLabelValues(r.Ledger).Add(float64(r.Flagged))
			t.m.freezes.WithLabelValues(r.Ledger).Add(float64(r.Frozen))
			if r.Flagged > 0 {
				t.log.Warn("transactions flagged", "ledger", r.Ledger, "flagged", r.Flagged, "frozen", r.Frozen)
			}
		}
		if r.Read > 0 {
			t.pace.rest(ctx, worked)
			continue
		}
		sleep(ctx, t.poll)
	}
}

// fraudMetrics: the fraud rate of a ledger is flags over scored
// (ledgerd:fraud_rate in deploy/prometheus/alerts.yml). The ledger label
// is bounded by the ledgers operators create.
type fraudMetrics struct {
	scores  prometheus.Histogram
	scored  *prometheus.CounterVec
	flags   *prometheus.CounterVec
	freezes *prometheus.CounterVec
}

func newFraudMetrics(reg prometheus.Registerer) *fraudMetrics {
	m := &fraudMetrics{
		scores: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ledgerd_fraud_scores",
			Help:    "Fraud scores (0-100) this worker gave posted transactions.",
			Buckets: []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}}),
		scored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_fraud_scored_total",
			Help: "Posted transactions this worker scored, per ledger."}, []string{"ledger"}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_fraud_flags_total",
			Help: "Transactions this worker flagged (score at or above freeze_score), per ledger."}, []string{"ledger"}),
		freezes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledgerd_fraud_freezes_total",
			Help: "Accounts this worker froze after a flag, per ledger."}, []string{"ledger"}),
	}
	if reg != nil {
		reg.MustRegister(m.scores, m.scored, m.flags, m.freezes)
	}
	return m
}
