package job_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestShutdownReleasesInFlight: a worker told to stop while an attempt
// hangs waits out its grace, cuts the attempt short and gives the delivery
// back (pending, the attempt not counted, no lease), so that the next
// worker attempts it at once rather than after the lease.
func TestShutdownReleasesInFlight(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "shutdown")
	r := newReceiver(t)
	id, secret := endpoint(t, e, l, r.URL())
	r.setSecrets(secret)
	r.setHang(time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	db, err := postgres.Open(ctx, postgres.Config{URL: e.DatabaseURL, MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := job.New(db, db, job.Config{AllowPrivate: true, Poll: 50 * time.Millisecond,
		ShutdownGrace: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()

	ev := transfer(t, e, l)
	log := hooksPath(l) + "/" + id + "/deliveries"
	waitFor(t, 10*time.Second, "the attempt to start", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.requests > 0
	})
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop within 10 s")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %v with a 500 ms grace", d)
	}
	m := e.Do("GET", log, admin, nil).Expect(t, 200).JSON()
	d := m["data"].([]any)[0].(map[string]any)
	if d["event_id"] != ev || d["status"] != "pending" || d["attempts"].(interface{ String() string }).String() != "0" {
		t.Fatalf("after shutdown the delivery is %v; want pending, 0 attempts", d)
	}
	// Released, not leased: a new worker attempts it at once.
	r.setHang(0)
	startWorker(t, e, job.Config{})
	waitFor(t, 5*time.Second, "the released delivery to be attempted again", func() bool { return r.ids()[ev] > 0 })
}
