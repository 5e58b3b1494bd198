package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/telemetry"
	"github.com/redis/go-redis/v9"
)

func runServe(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run a stateless API node. Many may run against one database.", stderr)
	var c config
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	c.bindServe(b, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(b.errs) > 0 {
		return errors.Join(b.errs...)
	}
	if err := c.validate(); err != nil {
		return err
	}
	tel, err := newTelemetry(ctx, &c, lookupEnv, stdout, nil)
	if err != nil {
		return err
	}
	log := tel.Log
	if c.AdminKey == "" {
		log.Warn("no admin key: nobody can create ledgers or API keys through this node; " +
			"set LEDGERD_ADMIN_KEY (at least 32 characters, e.g. from `openssl rand -hex 32`) unless keys were issued already")
	}
	db, err := openDB(ctx, &c, tel)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.CheckSchema(ctx); err != nil {
		return err
	}
	if err := db.CheckDurability(ctx); err != nil {
		return err
	}
	return serveNode(ctx, &c, db, tel, nil)
}

// newTelemetry builds the node's logger, registry and (with an OTLP
// endpoint in the environment) tracer provider; h, when set, replaces the
// JSON handler on stdout.
func newTelemetry(ctx context.Context, c *config, lookupEnv func(string) (string, bool), stdout io.Writer,
	h slog.Handler) (*telemetry.Telemetry, error) {
	return telemetry.New(ctx, telemetry.Options{Out: stdout, Handler: h, SampleRatio: c.TraceSampleRatio,
		LookupEnv: lookupEnv, Version: version})
}

func openDB(ctx context.Context, c *config, tel *telemetry.Telemetry) (*postgres.DB, error) {
	db, err := postgres.Open(ctx, postgres.Config{URL: c.DatabaseURL, MaxConns: int32(c.PoolMaxConns),
		AcquireTimeout: c.PoolAcquireTimeout, Tracer: tel.PgxTracer()})
	if err != nil {
		return nil, err
	}
	db.IdempotencyTTL = c.IdempotencyTTL
	db.SecretKeys = c.Tail.Secrets.keys
	c.Tail.Secrets.warn(tel.Log)
	if db.Archive, err = archiveReader(ctx, c.Tail.BlobURL); err != nil {
		db.Close()
		return nil, err
	}
	db.BalanceCheckpoint = c.BalanceCheckpoint
	if c.BalanceCheckpoint == 0 {
		db.BalanceCheckpoint = -1 // in every commit
	}
	return db, nil
}

// serveNode runs an API node until ctx ends, then drains: it stops
// accepting, lets in-flight requests finish (their batches commit), and
// closes the writer. ready, when set, is told the API's base URL.
func serveNode(ctx context.Context, c *config, db *postgres.DB, tel *telemetry.Telemetry, ready func(url string)) error {
	logger := tel.Log
	log := tel.Logger("serve") // each component adds its own
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	tlsConfig, err := loadTLS(c)
	if err != nil {
		return err
	}
	reg := tel.Registry
	db.RegisterMetrics(reg)
	db.ProblemStatus = httpapi.StatusOf
	replicas, err := postgres.OpenReplicas(ctx, db, postgres.ReplicaConfig{URLs: splitList(c.ReplicaURL),
		MaxConns: int32(c.ReplicaPoolMaxConns), AcquireTimeout: c.PoolAcquireTimeout, MaxLag: c.ReplicaMaxLag, Logger: logger})
	if err != nil {
		return err
	}
	defer replicas.Close()
	replicas.RegisterMetrics(reg)
	writer := batch.New(db.BatchStore(), batch.Config{MaxItems: c.CommitMaxItems, Window: c.CommitWindow,
		OverlapMin: c.CommitOverlapMin, OverlapFlights: c.CommitOverlapFlights, Tracer: tel.Tracer("ledgerd/batch")}, logger,
		batch.NewMetrics(reg), encodeForDeadLetter)
	metrics := httpapi.NewMetrics(reg)
	var rl httpapi.RateLimiter
	// Redis even with the default limit off: keys may have limits of
	// their own, and those are shared too.
	if c.RedisURL != "" {
		opts, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			writer.Close()
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		rl = httpapi.NewRedisLimiter(rdb, c.RateLimit, c.RateBurst, logger, metrics)
	}
	accessLog := logger
	if !c.AccessLog {
		accessLog = slog.New(slog.DiscardHandler)
	}
	api := httpapi.NewServer(postgres.NewRouter(db, replicas), writer, httpapi.Config{CommitPosition: db.CommitPosition, AdminKey: c.AdminKey, RateLimit: c.RateLimit, RateBurst: c.RateBurst,
		BatchMaxItems: c.BatchMaxItems, Logger: accessLog, Metrics: metrics, RateLimiter: rl, Tracer: tel.Tracer("ledgerd/httpapi"),
		Admission:  httpapi.AdmissionConfig{Target: c.ConcurrencyTarget, Min: c.ConcurrencyMin, Max: c.ConcurrencyMax},
		BodyBudget: int64(c.BodyBudget), KeyBodyBudget: int64(c.KeyBodyBudget), AuthFailRate: c.AuthFailRate,
		AuthFailBurst: c.AuthFailBurst, MetricAssets: splitList(c.MetricAssets),
		Webhooks: db, Monitors: db, Fraud: db, WebhookAllowPrivate: c.Tail.AllowPrivate})
	// The API compares keys with the key's hash; this copy of the
	// plaintext need not outlive the start.
	c.AdminKey = ""
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		writer.Close()
		return listenError(c.Addr, "--addr", "LEDGERD_ADDR", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10, TLSConfig: tlsConfig,
		// Failed TLS handshakes and the like: the client's doing, not an
		// error of the node's.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelInfo)}
	scheme := "http"
	errc := make(chan error, 2)
	if tlsConfig != nil {
		scheme = "https"
		// The certificate is in TLSConfig already; ServeTLS adds HTTP/2.
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}

	var dbg *http.Server
	if c.DebugAddr != "" {
		dln, err := net.Listen("tcp", c.DebugAddr)
		if err != nil {
			log.Warn("debug listener not started", "addr", c.DebugAddr,
				"err", listenError(c.DebugAddr, "--debug-addr", "LEDGERD_DEBUG_ADDR (empty: off)", err).Error())
		} else {
			dbg = telemetry.DebugServer(reg)
			go func() { _ = dbg.Serve(dln) }()
			log.Info("debug listener", "addr", dln.Addr().String())
		}
	}
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	go maintain(mctx, db, tel.Logger("maintain"))
	go db.SampleStatsEvery(mctx, 30*time.Second, tel.Logger("dbstats"))
	// Replica lag (ledgerd_db_replica_lag_seconds{replica}) comes from
	// the replicas' own probes (OpenReplicas above).
	go writer.ExpireHolds(mctx, db, c.ExpiryInterval, logger)
	// The tail yields to this node's write path while it is busy
	// (job/pace.go): what it holds in flight, ten times a second.
	node := nodeID()
	go func() { _ = db.ForgetLoads(mctx) }()
	go writer.PublishLoad(mctx, func(ctx context.Context, v float64) error { return db.PublishLoad(ctx, node, v) },
		100*time.Millisecond, logger.With("component", "load"))
	var tailDone <-chan struct{}
	if c.Tail.Workers {
		c.Tail.tracer = tel.Tracer("ledgerd/job")
		if tailDone, err = startTail(mctx, c.DatabaseURL, &c.Tail, logger.With("component", "tail"), reg); err != nil {
			logger.Error("tail not started", "err", err)
		}
	}

	url := scheme + "://" + ln.Addr().String()
	if tel.Tracing() {
		log.Info("tracing", "sample_ratio", c.TraceSampleRatio)
	}
	log.Info("serving", "addr", ln.Addr().String(), "url", url, "schema_version", postgres.SchemaVersion)
	if ready != nil {
		ready(url)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		writer.Close()
		return err
	}
	// Drain: /readyz says not ready while the node still serves, so that
	// the load balancer moves new requests elsewhere; then no new
	// connections, in-flight requests finish (bounded), and the writer
	// commits or answers whatever is still queued.
	log.Info("draining", "drain_delay", c.DrainDelay.String(), "shutdown_timeout", c.ShutdownTimeout.String())
	api.Drain()
	srv.SetKeepAlivesEnabled(false)
	deadline := time.Now().Add(c.ShutdownTimeout)
	select {
	case <-time.After(min(c.DrainDelay, c.ShutdownTimeout)):
	case err := <-errc:
		writer.Close()
		return err
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown deadline; closing their connections", "err", err)
		_ = srv.Close()
	}
	if dbg != nil {
		_ = dbg.Shutdown(sctx)
	}
	mcancel()
	if tailDone != nil {
		<-tailDone
	}
	writer.Close()
	log.Info("stopped")
	return nil
}

// maintain keeps partitions ahead of time and expires idempotency records.
// Every node runs it; both jobs are idempotent.
func maintain(ctx context.Context, db *postgres.DB, log *slog.Logger) {
	partitions := time.NewTicker(time.Hour)
	defer partitions.Stop()
	expiry := time.NewTicker(time.Minute)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-partitions.C:
			if err := db.EnsurePartitions(ctx); err != nil {
				log.Error("partition maintenance", "err", err)
			}
		case <-expiry.C:
			for range 100 {
				n, err := db.DeleteExpiredKeys(ctx, 10_000)
				if err != nil {
					log.Error("idempotency expiry", "err", err)
					break
				}
				if n < 10_000 {
					break
				}
			}
		}
	}
}

// listenError explains a listen failure; a port in use is the common one,
// and the message names the setting that moves the listener.
func listenError(addr, flag, env string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen %s: the address is in use by another process; choose another with %s or %s "+
			"(port 0 picks a free one): %w", addr, flag, env, err)
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// loadTLS reads the API's certificate when LEDGERD_TLS_CERT is set (nil
// otherwise): at start, so that a wrong file stops the node before it
// listens. Go's defaults otherwise (cipher suites, curves), from TLS 1.2.
func loadTLS(c *config) (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("LEDGERD_TLS_CERT/LEDGERD_TLS_KEY: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

func encodeForDeadLetter(r *ledgerd.TransactionRequest) []byte {
	b := []byte(`{"postings":`)
	b = ledgerd.AppendPostingsJSON(b, r.Postings)
	b = append(b, `,"metadata":`...)
	b = ledgerd.AppendMetadataJSON(b, r.Metadata)
	b = append(b, `,"reference":`...)
	b = ledgerd.AppendJSONString(b, r.Reference)
	return append(b, '}')
}

// nodeID names this process among the API nodes: host, process and a
// random part (two containers may share both).
func nodeID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}
