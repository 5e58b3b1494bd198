package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	log := newLogger(stdout)
	db, err := openDB(ctx, &c)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.CheckSchema(ctx); err != nil {
		return err
	}
	return serveNode(ctx, &c, db, log, nil)
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func openDB(ctx context.Context, c *config) (*postgres.DB, error) {
	db, err := postgres.Open(ctx, postgres.Config{URL: c.DatabaseURL, MaxConns: int32(c.PoolMaxConns), AcquireTimeout: c.PoolAcquireTimeout})
	if err != nil {
		return nil, err
	}
	db.IdempotencyTTL = c.IdempotencyTTL
	db.BalanceCheckpoint = c.BalanceCheckpoint
	if c.BalanceCheckpoint == 0 {
		db.BalanceCheckpoint = -1 // in every commit
	}
	return db, nil
}

// serveNode runs an API node until ctx ends, then drains: it stops
// accepting, lets in-flight requests finish (their batches commit), and
// closes the writer. ready, when set, is told the bound address.
func serveNode(ctx context.Context, c *config, db *postgres.DB, logger *slog.Logger, ready func(addr string)) error {
	log := logger.With("component", "serve") // each component adds its own
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	db.RegisterMetrics(reg)
	db.ProblemStatus = httpapi.StatusOf
	writer := batch.New(db.BatchStore(), batch.Config{MaxItems: c.CommitMaxItems, Window: c.CommitWindow,
		OverlapMin: c.CommitOverlapMin, OverlapFlights: c.CommitOverlapFlights}, logger,
		batch.NewMetrics(reg), encodeForDeadLetter)
	accessLog := logger
	if !c.AccessLog {
		accessLog = slog.New(slog.DiscardHandler)
	}
	api := httpapi.NewServer(db, writer, httpapi.Config{AdminKey: c.AdminKey, RateLimit: c.RateLimit, RateBurst: c.RateBurst,
		BatchMaxItems: c.BatchMaxItems, Logger: accessLog, Metrics: httpapi.NewMetrics(reg)})
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		writer.Close()
		return fmt.Errorf("listen %s: %w", c.Addr, err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	var dbg *http.Server
	if c.DebugAddr != "" {
		dln, err := net.Listen("tcp", c.DebugAddr)
		if err != nil {
			log.Warn("debug listener not started", "addr", c.DebugAddr, "err", err)
		} else {
			dbg = &http.Server{Handler: debugMux(reg), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = dbg.Serve(dln) }()
			log.Info("debug listener", "addr", dln.Addr().String())
		}
	}
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	go maintain(mctx, db, logger.With("component", "maintain"))
	go writer.ExpireHolds(mctx, db, c.ExpiryInterval, logger)

	log.Info("serving", "addr", ln.Addr().String(), "schema_version", postgres.SchemaVersion)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		writer.Close()
		return err
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if dbg != nil {
		_ = dbg.Shutdown(sctx)
	}
	writer.Close()
	return nil
}

// debugMux serves metrics and profiles on a separate listener (loopback by
// default), so that neither is exposed with the API.
func debugMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
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

func encodeForDeadLetter(r *ledgerd.TransactionRequest) []byte {
	b := []byte(`{"postings":`)
	b = ledgerd.AppendPostingsJSON(b, r.Postings)
	b = append(b, `,"metadata":`...)
	b = ledgerd.AppendMetadataJSON(b, r.Metadata)
	b = append(b, `,"reference":`...)
	b = ledgerd.AppendJSONString(b, r.Reference)
	return append(b, '}')
}

func runMigrate(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Apply the embedded schema migrations and create partitions ahead.", stderr)
	var url string
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.str(&url, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the primary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if url == "" {
		return errors.New("DATABASE_URL (or --database-url) is required")
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	v, err := db.CheckSchema(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}
