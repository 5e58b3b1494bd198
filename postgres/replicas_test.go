package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/pgcluster"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// gauge reads one replica gauge from reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// A replica further behind than MaxLag leaves rotation, and its lag is
// exported; a stopped one leaves it too.
func TestReplicaRotation(t *testing.T) {
	c := ledgertest.Cluster(t)
	if c == nil {
		t.Skip("needs the test cluster (DATABASE_URL is set)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := ledgertest.NewDatabase(t)
	u, _ := url.Parse(raw)
	primary, err := postgres.Open(ctx, postgres.Config{URL: raw, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	rep, err := c.StartReplica(ctx, pgcluster.ReplicaOptions{ApplyDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rep.Stop() }()
	rs, err := postgres.OpenReplicas(ctx, primary, postgres.ReplicaConfig{
		URLs: []string{rep.URL(strings.TrimPrefix(u.Path, "/"))}, MaxLag: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	reg := prometheus.NewRegistry()
	rs.RegisterMetrics(reg)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the replica in rotation", func() bool { return gauge(t, reg, "ledgerd_db_replica_in_rotation") == 1 })
	// Commits the replica shows only 2 s later: it falls behind by more
	// than MaxLag and leaves rotation.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = primary.CreateLedger(ctx, "l"+time.Now().Format("150405.000000"))
			}
		}
	}()
	waitFor("the lagging replica out of rotation", func() bool { return gauge(t, reg, "ledgerd_db_replica_in_rotation") == 0 })
	if lag := gauge(t, reg, "ledgerd_db_replica_lag_seconds"); lag <= 0.5 {
		t.Fatalf("out of rotation with lag %v s", lag)
	}
	if b := gauge(t, reg, "ledgerd_db_replica_lag_bytes"); b <= 0 {
		t.Fatalf("lag bytes %v", b)
	}
	close(stop)
	<-done
	waitFor("the replica back once caught up", func() bool { return gauge(t, reg, "ledgerd_db_replica_in_rotation") == 1 })
	if err := rep.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor("the stopped replica out of rotation", func() bool { return gauge(t, reg, "ledgerd_db_replica_in_rotation") == 0 })
}
