package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaConfig describes the read replicas (DATABASE_REPLICA_URL).
type ReplicaConfig struct {
	URLs []string
	// MaxConns and AcquireTimeout size each replica's own pool: reads
	// never take a connection the write path needs.
	MaxConns       int32
	AcquireTimeout time.Duration
	// MaxLag takes a replica out of rotation while it is further behind
	// the primary than this (default 5 s).
	MaxLag time.Duration
	// Probe is how often each replica's replay position is read (default
	// 50 ms); Wait is the longest a read with a Consistency-Token waits
	// for a replica to reach it before going to the primary (default 10 ms).
	Probe, Wait time.Duration
	Logger      *slog.Logger
}

// Replicas tracks read replicas: their replay positions, lag and health.
type Replicas struct {
	primary *DB
	list    []*replica
	cfg     ReplicaConfig
	next    atomic.Uint32
	// samples remember the primary's position over the last moments, to
	// turn a replica's replay position into a lag in seconds.
	mu      sync.Mutex
	samples []sample
	stop    context.CancelFunc
	done    sync.WaitGroup
}

type sample struct {
	lsn uint64
	at  time.Time
}

type replica struct {
	name     string
	db       *DB
	log      *slog.Logger
	replay   atomic.Uint64 // replayed position at the last probe
	up       atomic.Bool   // the last probe or read succeeded
	lagNanos atomic.Int64
	lagBytes atomic.Int64
}

// OpenReplicas opens a pool per replica URL and starts probing them; the
// replicas need not be reachable yet (they join rotation once they are).
func OpenReplicas(ctx context.Context, primary *DB, c ReplicaConfig) (*Replicas, error) {
	if c.MaxLag <= 0 {
		c.MaxLag = 5 * time.Second
	}
	if c.Probe <= 0 {
		c.Probe = 50 * time.Millisecond
	}
	if c.Wait <= 0 {
		c.Wait = 10 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	rs := &Replicas{primary: primary, cfg: c}
	for i, u := range c.URLs {
		db, err := Open(ctx, Config{URL: u, MaxConns: c.MaxConns, AcquireTimeout: c.AcquireTimeout})
		if err != nil {
			rs.Close()
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		db.Archive = primary.Archive // archived months: the same bucket
		name := strconv.Itoa(i)
		rs.list = append(rs.list, &replica{name: name, db: db, log: c.Logger.With("component", "replicas", "replica", name)})
	}
	pctx, cancel := context.WithCancel(context.Background())
	rs.stop = cancel
	rs.done.Add(1 + len(rs.list))
	go rs.probePrimary(pctx)
	for _, r := range rs.list {
		go rs.probeReplica(pctx, r)
	}
	return rs, nil
}

// Close stops the probes and closes the replica pools.
func (rs *Replicas) Close() {
	if rs == nil {
		return
	}
	if rs.stop != nil {
		rs.stop()
		rs.done.Wait()
	}
	for _, r := range rs.list {
		r.db.Close()
	}
}

// probePrimary samples the primary's position (also raising the node's
// commit position: writes of other nodes count too).
func (rs *Replicas) probePrimary(ctx context.Context) {
	defer rs.done.Done()
	t := time.NewTicker(rs.cfg.Probe)
	defer t.Stop()
	window := int(2*rs.cfg.MaxLag/rs.cfg.Probe) + 2
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		var lsn int64
		err := rs.primary.queryRow(pctx, lsnSQL).Scan(&lsn)
		cancel()
		if err == nil {
			rs.primary.notePosition(uint64(lsn))
			rs.mu.Lock()
			rs.samples = append(rs.samples, sample{uint64(lsn), time.Now()})
			if len(rs.samples) > window {
				rs.samples = append(rs.samples[:0], rs.samples[len(rs.samples)-window:]...)
			}
			rs.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lagOf is how far behind a replica at replay is: how long ago the primary
// first stood past replay (0 when it never did in the window's memory of
// positions; the whole window when replay is older than all of it).
func (rs *Replicas) lagOf(replay uint64, now time.Time) (time.Duration, int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.samples) == 0 {
		return 0, 0
	}
	newest := rs.samples[len(rs.samples)-1].lsn
	var bytes int64
	if newest > replay {
		bytes = int64(newest - replay)
	}
	for _, s := range rs.samples {
		if s.lsn > replay {
			return now.Sub(s.at), bytes
		}
	}
	return 0, bytes
}

func (rs *Replicas) probeReplica(ctx context.Context, r *replica) {
	defer rs.done.Done()
	t := time.NewTicker(rs.cfg.Probe)
	defer t.Stop()
	for {
		rs.probe(ctx, r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe reads a replica's replay position once and updates its lag.
func (rs *Replicas) probe(ctx context.Context, r *replica) bool {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var replay int64
	if err := r.db.queryRow(pctx, replayLSNSQL).Scan(&replay); err != nil || replay < 0 {
		if err == nil {
			err = fmt.Errorf("no WAL position (replay not started)")
		}
		if ctx.Err() == nil {
			r.fail(err)
		}
		return false
	}
	if old := r.replay.Load(); uint64(replay) > old {
		r.replay.Store(uint64(replay))
	}
	lag, bytes := rs.lagOf(uint64(replay), time.Now())
	r.lagNanos.Store(int64(lag))
	r.lagBytes.Store(bytes)
	if !r.up.Swap(true) {
		r.log.Info("replica answers")
	}
	return true
}

func (r *replica) fail(err error) {
	if r.up.Swap(false) {
		r.log.Warn("replica out of rotation", "err", err)
	}
}

func (rs *Replicas) inRotation(r *replica) bool {
	return r.up.Load() && time.Duration(r.lagNanos.Load()) <= rs.cfg.MaxLag
}

// pick chooses the replica for a read, or nil for the primary.
func (rs *Replicas) pick(ctx context.Context) *replica {
	if rs == nil || len(rs.list) == 0 {
		return nil
	}
	want := uint64(ledgerd.ReadAfter(ctx))
	n := len(rs.list)
	start := int(rs.next.Add(1))
	var best *replica
	for i := range n {
		r := rs.list[(start+i)%n]
		if !rs.inRotation(r) {
			continue
		}
		if r.replay.Load() >= want {
			return r
		}
		if best == nil || r.replay.Load() > best.replay.Load() {
			best = r
		}
	}
	if best == nil {
		return nil
	}
	// Behind the token: ask the most advanced replica again for a few
	// milliseconds (its probe is tens of ms apart), then the primary.
	deadline := time.Now().Add(rs.cfg.Wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !rs.probe(ctx, best) {
			return nil
		}
		if best.replay.Load() >= want {
			return best
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// RegisterMetrics exports each replica's lag, health and pool use.
func (rs *Replicas) RegisterMetrics(reg prometheus.Registerer) {
	if rs == nil || len(rs.list) == 0 {
		return
	}
	reg.MustRegister(&replicaCollector{rs: rs,
		lagSeconds: prometheus.NewDesc("ledgerd_db_replica_lag_seconds", "How long ago the primary stood where the replica has replayed to.", []string{"replica"}, nil),
		lagBytes:   prometheus.NewDesc("ledgerd_db_replica_lag_bytes", "WAL bytes the replica has yet to replay.", []string{"replica"}, nil),
		up:         prometheus.NewDesc("ledgerd_db_replica_in_rotation", "1 when reads may go to the replica (answering, within the lag bound).", []string{"replica"}, nil),
		util:       prometheus.NewDesc("ledgerd_db_replica_pool_utilisation", "Connections in use / pool size of the replica's pool.", []string{"replica"}, nil),
	})
}

type replicaCollector struct {
	rs                             *Replicas
	lagSeconds, lagBytes, up, util *prometheus.Desc
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lagSeconds
	ch <- c.lagBytes
	ch <- c.up
	ch <- c.util
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.rs.list {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, r.name)
		}
		lag := time.Duration(r.lagNanos.Load()).Seconds()
		if !r.up.Load() {
			lag = math.Inf(1) // unreachable: as far behind as can be
		}
		g(c.lagSeconds, lag)
		g(c.lagBytes, float64(r.lagBytes.Load()))
		in := 0.0
		if c.rs.inRotation(r) {
			in = 1
		}
		g(c.up, in)
		s := r.db.Pool.Stat()
		g(c.util, float64(s.AcquiredConns())/float64(max(s.MaxConns(), 1)))
	}
}
