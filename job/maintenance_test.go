package job_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// bloatedDB is a database whose transaction_references_pkey is nine
// tenths empty pages: 200,000 references inserted, nine in ten deleted,
// then vacuumed (which leaves the half-empty pages in the index) and
// analyzed (so that the estimate has its statistics); the table's other
// index is rebuilt, so that the primary key is the one bloated.
func bloatedDB(t *testing.T) *postgres.DB {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewDatabase(t), MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	for _, sql := range []string{
		`INSERT INTO transaction_references (ledger_id, reference, transaction_id)
			SELECT 1, 'bloat-' || lpad(i::text, 8, '0'), gen_random_uuid() FROM generate_series(1, 200000) i`,
		`DELETE FROM transaction_references WHERE reference LIKE 'bloat-%' AND right(reference, 1) <> '0'`,
		`VACUUM ANALYZE transaction_references`,
		// Only the primary key stays bloated: the tests expect that index
		// and no other to be rebuilt.
		`REINDEX INDEX transaction_references_transaction`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// relfilenodes maps every index of the schema to its file: a rebuild
// gives the index a new one.
func relfilenodes(t *testing.T, db *postgres.DB) map[string]uint32 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT relname, relfilenode FROM pg_class
		WHERE relkind = 'i' AND relnamespace = current_schema()::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint32{}
	for rows.Next() {
		var name string
		var node uint32
		if err := rows.Scan(&name, &node); err != nil {
			t.Fatal(err)
		}
		out[name] = node
	}
	return out
}

func runMaintenance(t *testing.T, db *postgres.DB, m job.MaintenanceConfig) (*prometheus.Registry, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	w := job.New(db, db, job.Config{Poll: 50 * time.Millisecond, Registerer: reg, Maintenance: m,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30 s")
		}
	}
	t.Cleanup(stop)
	return reg, stop
}

func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.Gauge != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// The job estimates the bloat of the index nine tenths empty, rebuilds it
// (a new file) while the window is open, and touches no other index;
// rebuilt, it is no longer bloated, so it is not rebuilt again.
func TestMaintenanceRebuildsBloatedIndex(t *testing.T) {
	db := bloatedDB(t)
	es, err := db.IndexEstimates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range es {
		if e.Index == "transaction_references_pkey" {
			found = true
			if e.Ratio() < 0.7 {
				t.Fatalf("estimate of the emptied index: %+v (ratio %.2f), want most of it bloat", e, e.Ratio())
			}
		} else if e.BloatBytes >= 1<<20 {
			t.Fatalf("untouched index estimated bloated: %+v", e)
		}
	}
	if !found {
		t.Fatalf("no estimate for transaction_references_pkey in %+v", es)
	}

	before := relfilenodes(t, db)
	reg, stop := runMaintenance(t, db, job.MaintenanceConfig{Window: job.AlwaysOpen, MinRatio: 0.2, MinBytes: 1 << 20,
		Interval: 100 * time.Millisecond})
	waitFor(t, 60*time.Second, "the rebuild", func() bool {
		return gauge(t, reg, "ledgerd_maintenance_reindex_total", "outcome", "rebuilt") >= 1
	})
	// A few more rounds: nothing else qualifies.
	time.Sleep(500 * time.Millisecond)
	stop()
	after := relfilenodes(t, db)
	for name, node := range before {
		switch {
		case name == "transaction_references_pkey" && after[name] == node:
			t.Fatalf("%s keeps its file %d: not rebuilt", name, node)
		case name != "transaction_references_pkey" && after[name] != node:
			t.Fatalf("%s rebuilt too (%d → %d)", name, node, after[name])
		}
	}
	if len(after) != len(before) {
		t.Fatalf("indexes before %v, after %v (a leftover?)", before, after)
	}
	if n := gauge(t, reg, "ledgerd_maintenance_reindex_total", "outcome", "rebuilt"); n != 1 {
		t.Fatalf("%v rebuilds, want 1", n)
	}
	if b := gauge(t, reg, "ledgerd_maintenance_index_bloat_bytes", "table", "transaction_references"); b >= 1<<20 {
		t.Fatalf("bloat gauge of transaction_references after the rebuild: %v", b)
	}
	// The estimate of the rebuilt index is next to nothing.
	es, err = db.IndexEstimates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Index == "transaction_references_pkey" && e.Ratio() > 0.1 {
			t.Fatalf("rebuilt index estimated at %.2f bloat: %+v", e.Ratio(), e)
		}
	}
	// Lookups still answer from the rebuilt index.
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM transaction_references WHERE ledger_id = 1 AND reference LIKE 'bloat-%'`).Scan(&n); err != nil || n != 20000 {
		t.Fatalf("%d references after the rebuild (%v), want 20000", n, err)
	}
}

// Outside the window the job measures (the gauge) and rebuilds nothing.
func TestMaintenanceOutsideWindow(t *testing.T) {
	db := bloatedDB(t)
	before := relfilenodes(t, db)
	// A window that closed an hour ago and opens in an hour.
	now := time.Now().UTC()
	w, err := job.ParseWindow(now.Add(time.Hour).Format("15:04") + "-" + now.Add(-time.Hour).Format("15:04"))
	if err != nil {
		t.Fatal(err)
	}
	reg, stop := runMaintenance(t, db, job.MaintenanceConfig{Window: w, MinRatio: 0.2, MinBytes: 1 << 20, Interval: 50 * time.Millisecond})
	waitFor(t, 30*time.Second, "a measurement", func() bool {
		return gauge(t, reg, "ledgerd_maintenance_index_bloat_bytes", "table", "transaction_references") >= 1<<20
	})
	time.Sleep(500 * time.Millisecond)
	stop()
	after := relfilenodes(t, db)
	for name, node := range before {
		if after[name] != node {
			t.Fatalf("%s rebuilt outside the window", name)
		}
	}
	if n := gauge(t, reg, "ledgerd_maintenance_reindex_total", "outcome", "rebuilt"); n != 0 {
		t.Fatalf("%v rebuilds outside the window", n)
	}
}

// Two workers never rebuild at once: while one holds the lease, the
// other's step does nothing; and the leftover of an interrupted rebuild
// (an invalid _ccnew index) is dropped by the next step.
func TestReindexLeaseAndLeftovers(t *testing.T) {
	db := bloatedDB(t)
	ctx := context.Background()
	policy := postgres.ReindexPolicy{MinRatio: 0.2, MinBytes: 1 << 20, Holder: "other", Lease: time.Minute}
	if _, err := db.Pool.Exec(ctx, `UPDATE maintenance_leases SET holder = 'first', until = now() + interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	res, err := db.ReindexStep(ctx, policy)
	if err != nil || !res.Busy || res.Rebuilt != nil {
		t.Fatalf("step under another's lease: %+v %v", res, err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE maintenance_leases SET until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}

	// An interrupted REINDEX CONCURRENTLY (cancelled on the server, as a
	// statement_timeout or an operator would): once its new copy exists
	// (invalid, named _ccnew) and it waits for an older snapshot.
	go func() {
		waitFor(t, 30*time.Second, "the rebuild waiting with its new copy", func() bool {
			var n int
			_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_class c, pg_stat_activity a
				WHERE c.relname LIKE 'transaction_references_pkey_ccnew%' AND a.query LIKE 'REINDEX INDEX CONCURRENTLY%'
				AND a.wait_event_type = 'Lock'`).Scan(&n)
			return n > 0
		})
		_, _ = db.Pool.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'REINDEX INDEX CONCURRENTLY%'`)
	}()
	// Hold a snapshot so that the rebuild waits for it after building its copy.
	hold, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	var x int
	if err := hold.QueryRow(ctx, `SELECT count(*) FROM ledgers`).Scan(&x); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReindexStep(ctx, policy); err == nil {
		t.Fatal("the cancelled rebuild reported no error")
	}
	_ = hold.Rollback(ctx)
	var leftovers int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE NOT i.indisvalid AND c.relname LIKE 'transaction_references_pkey_ccnew%'`).Scan(&leftovers); err != nil || leftovers != 1 {
		t.Fatalf("%d leftovers after the interruption (%v), want 1", leftovers, err)
	}
	res, err = db.ReindexStep(ctx, policy)
	if err != nil || len(res.Dropped) != 1 || res.Rebuilt == nil || res.Rebuilt.Index != "transaction_references_pkey" {
		t.Fatalf("step after the interruption: %+v %v", res, err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_index i WHERE NOT i.indisvalid`).Scan(&leftovers); err != nil || leftovers != 0 {
		t.Fatalf("%d invalid indexes left (%v)", leftovers, err)
	}
	var holder *string
	if err := db.Pool.QueryRow(ctx, `SELECT holder FROM maintenance_leases WHERE name = 'reindex'`).Scan(&holder); err != nil || holder != nil {
		t.Fatalf("lease after the step: %v %v", holder, err)
	}
}

func TestParseWindow(t *testing.T) {
	at := func(hm string) time.Time {
		tm, err := time.Parse("15:04", hm)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 12, 4, tm.Hour(), tm.Minute(), 0, 0, time.UTC)
	}
	for _, c := range []struct {
		window       string
		open, closed []string
	}{
		{"02:00-05:00", []string{"02:00", "04:59"}, []string{"01:59", "05:00", "12:00"}},
		{"22:00-04:00", []string{"22:00", "23:59", "00:00", "03:59"}, []string{"04:00", "21:59", "12:00"}},
		{"always", []string{"00:00", "12:00", "23:59"}, nil},
		{"off", nil, []string{"00:00", "12:00", "23:59"}},
	} {
		w, err := job.ParseWindow(c.window)
		if err != nil {
			t.Fatalf("%s: %v", c.window, err)
		}
		if w.String() != c.window {
			t.Fatalf("%s reads back as %s", c.window, w)
		}
		for _, hm := range c.open {
			if !w.Contains(at(hm)) {
				t.Fatalf("%s closed at %s", c.window, hm)
			}
		}
		for _, hm := range c.closed {
			if w.Contains(at(hm)) {
				t.Fatalf("%s open at %s", c.window, hm)
			}
		}
	}
	for _, bad := range []string{"", "2-5", "02:00", "02:00-02:00", "25:00-03:00", "always-off"} {
		if _, err := job.ParseWindow(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
