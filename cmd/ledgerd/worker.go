package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/telemetry"
	"github.com/ledgerd/ledgerd/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// tailConfig is the asynchronous tail's settings: `ledgerd worker` takes
// them all; serve and dev too, for the tail they run with LEDGERD_WORKERS.
type tailConfig struct {
	Workers       bool
	RetrySchedule string
	AllowPrivate  bool
	Concurrency   int
	PerEndpoint   int
	PoolMaxConns  int
	Timeout       time.Duration
	Poll          time.Duration
	Retention     time.Duration
	// Retention of the side tables (job/retention.go); 0 keeps forever.
	Keep     job.RetentionConfig
	schedule webhook.Schedule
	SMTPURL  string // balance monitors' e-mail (job/email.go)
	SMTPFrom string
	// Index maintenance (job/maintenance.go).
	MaintenanceWindow string
	ReindexMinRatio   float64
	ReindexMinMB      int
	window            job.Window
	// tracer records delivery spans (nil: tracing off).
	tracer trace.Tracer
	// The periodic archival job (job/archive.go): on when BlobURL is set.
	BlobURL        string
	ArchiveEvery   time.Duration
	IdempotencyTTL time.Duration // the API's, which archival must outlast
	// YieldInFlight: the API's transactions in flight above which the
	// tail rests (job/pace.go), for at most YieldMaxLag behind.
	YieldInFlight float64
	YieldMaxLag   time.Duration
	Secrets       secretKeys
}

// bind registers the tail's flags; withSwitch adds LEDGERD_WORKERS (serve
// and dev), defaulting to workersOn.
func (t *tailConfig) bind(b *binder, withSwitch, workersOn bool) {
	if withSwitch {
		b.boolean(&t.Workers, "workers", "LEDGERD_WORKERS", workersOn, "run the asynchronous tail (event relay, webhook deliveries) in this process too")
	}
	b.str(&t.RetrySchedule, "webhook-retry-schedule", "LEDGERD_WEBHOOK_RETRY_SCHEDULE", "", "waits between delivery attempts, comma-separated (empty: 5s,5m,30m,2h,5h,10h,10h)")
	b.boolean(&t.AllowPrivate, "webhook-allow-private", "LEDGERD_WEBHOOK_ALLOW_PRIVATE", false, "accept and deliver to webhook URLs on loopback, private and other non-public addresses")
	b.int(&t.Concurrency, "worker-concurrency", "LEDGERD_WORKER_CONCURRENCY", 128, "delivery attempts one worker makes at once")
	b.int(&t.PerEndpoint, "webhook-per-endpoint", "LEDGERD_WEBHOOK_PER_ENDPOINT", 32, "delivery attempts in flight to one endpoint, per worker")
	b.int(&t.PoolMaxConns, "worker-pool-max-conns", "LEDGERD_WORKER_POOL_MAX_CONNS", 6, "database connections of the tail (its own pool, apart from the API's)")
	b.dur(&t.Timeout, "webhook-timeout", "LEDGERD_WEBHOOK_TIMEOUT", webhook.DefaultTimeout, "longest wait for a receiver's answer")
	b.dur(&t.Poll, "worker-poll", "LEDGERD_WORKER_POLL", 50*time.Millisecond, "how often an idle worker looks for new events and due deliveries")
	t.Secrets.bind(b)
	b.secret(&t.SMTPURL, "smtp-url", "LEDGERD_SMTP_URL", "SMTP server of monitor e-mails, smtp://user:pass@host:port or smtps://… (empty: e-mails stay queued)", maskSMTPURL)
	b.str(&t.SMTPFrom, "smtp-from", "LEDGERD_SMTP_FROM", "", "sender address of monitor e-mails")
	b.secret(&t.BlobURL, "blob-url", "LEDGERD_BLOB_URL", "bucket `URL` of the archive (docs/data-lifecycle.md); set, the tail archives old months every --archive-interval", maskBlobURL)
	b.dur(&t.ArchiveEvery, "archive-interval", "LEDGERD_ARCHIVE_INTERVAL", time.Hour, "time between archival runs of the tail (0: off)")
	b.dur(&t.Retention, "webhook-retention", "LEDGERD_WEBHOOK_RETENTION", 7*24*time.Hour, "how long delivered deliveries stay in the delivery log")
	b.dur(&t.Keep.Events, "retain-events", "LEDGERD_RETAIN_EVENTS", 90*24*time.Hour, "how long rows of the events table (events that are not transactions) are kept; 0 keeps them forever")
	b.dur(&t.Keep.Audit, "retain-audit", "LEDGERD_RETAIN_AUDIT", 400*24*time.Hour, "how long chained audit entries are kept; 0 keeps them forever")
	b.dur(&t.Keep.DeadLetters, "retain-dead-letters", "LEDGERD_RETAIN_DEAD_LETTERS", 30*24*time.Hour, "how long batch dead letters are kept; 0 keeps them forever")
	b.dur(&t.Keep.FailedDeliveries, "retain-failed-deliveries", "LEDGERD_RETAIN_FAILED_DELIVERIES", 30*24*time.Hour, "how long dead-lettered webhook deliveries are kept, from their event; 0 keeps them forever")
	b.dur(&t.Keep.Risk, "retain-risk", "LEDGERD_RETAIN_RISK", 180*24*time.Hour, "how long transactions' fraud scores are kept; 0 keeps them forever")
	b.dur(&t.Keep.Traces, "retain-traces", "LEDGERD_RETAIN_TRACES", 7*24*time.Hour, "how long transactions' trace links are kept; 0 keeps them forever")
	b.dur(&t.Keep.Emails, "retain-emails", "LEDGERD_RETAIN_EMAILS", 30*24*time.Hour, "how long sent and failed monitor e-mails are kept; 0 keeps them forever")
	b.dur(&t.Keep.References, "retain-references", "LEDGERD_RETAIN_REFERENCES", 400*24*time.Hour, "how long references of an archived month stay taken after the month ended; 0 keeps them forever")
	b.float(&t.YieldInFlight, "tail-yield-inflight", "LEDGERD_TAIL_YIELD_INFLIGHT", 32, "transactions the API nodes' write paths may hold in flight (all nodes together) before the tail rests, leaving the machine to them (0: not watched)")
	b.dur(&t.YieldMaxLag, "tail-yield-max-lag", "LEDGERD_TAIL_YIELD_MAX_LAG", 5*time.Minute, "how far behind the tail may fall while it yields to a busy request path; beyond, it yields only to a queueing database")
	b.str(&t.MaintenanceWindow, "maintenance-window", "LEDGERD_MAINTENANCE_WINDOW", "02:00-05:00", "when index rebuilds may start, HH:MM-HH:MM in UTC, always or off")
	b.float(&t.ReindexMinRatio, "reindex-min-ratio", "LEDGERD_REINDEX_MIN_RATIO", 0.5, "estimated share of bloat past which an index is rebuilt")
	b.int(&t.ReindexMinMB, "reindex-min-mb", "LEDGERD_REINDEX_MIN_MB", 64, "estimated bloat in MiB below which an index is never rebuilt")
}

func (t *tailConfig) validate() error {
	if err := t.Secrets.parse(); err != nil {
		return err
	}
	if t.RetrySchedule != "" {
		s, err := webhook.ParseSchedule(t.RetrySchedule)
		if err != nil {
			return fmt.Errorf("LEDGERD_WEBHOOK_RETRY_SCHEDULE: %w", err)
		}
		t.schedule = s
	}
	if err := checkSMTP(t.SMTPURL, t.SMTPFrom); err != nil {
		return err
	}
	w, err := job.ParseWindow(t.MaintenanceWindow)
	if err != nil {
		return fmt.Errorf("LEDGERD_MAINTENANCE_WINDOW: %w", err)
	}
	t.window = w
	for _, d := range []*time.Duration{&t.Keep.Events, &t.Keep.Audit, &t.Keep.DeadLetters, &t.Keep.FailedDeliveries,
		&t.Keep.Risk, &t.Keep.Traces, &t.Keep.Emails, &t.Keep.References} {
		switch {
		case *d < 0:
			return errors.New("LEDGERD_RETAIN_* settings must not be negative (0 keeps forever)")
		case *d == 0:
			*d = -1 // job.RetentionConfig: negative keeps forever, zero takes the default
		}
	}
	switch {
	case t.ReindexMinRatio <= 0 || t.ReindexMinRatio >= 1 || t.ReindexMinMB < 1:
		return errors.New("LEDGERD_REINDEX_MIN_RATIO must be between 0 and 1 (exclusive) and LEDGERD_REINDEX_MIN_MB at least 1")
	case t.Concurrency < 1 || t.Concurrency > 4096:
		return errors.New("LEDGERD_WORKER_CONCURRENCY must be between 1 and 4096")
	case t.PerEndpoint < 1:
		return errors.New("LEDGERD_WEBHOOK_PER_ENDPOINT must be at least 1")
	case t.YieldInFlight < 0 || t.YieldMaxLag <= 0:
		return errors.New("LEDGERD_TAIL_YIELD_INFLIGHT must not be negative and LEDGERD_TAIL_YIELD_MAX_LAG must be positive")
	case t.PoolMaxConns < 3:
		return errors.New("LEDGERD_WORKER_POOL_MAX_CONNS must be at least 3 (relay, claims, outcomes)")
	case t.Timeout <= 0 || t.Poll <= 0 || t.Retention <= 0:
		return errors.New("LEDGERD_WEBHOOK_TIMEOUT, LEDGERD_WORKER_POLL and LEDGERD_WEBHOOK_RETENTION must be positive")
	}
	return nil
}

// startTail runs the tail until ctx ends, on a pool of its own: the tail
// can never take a connection the API's writes need, and a slow tail only
// grows its lag. It returns a channel closed when the tail has stopped
// (attempts finished or released, outcomes written).
func startTail(ctx context.Context, dbURL string, t *tailConfig, log *slog.Logger, reg prometheus.Registerer) (<-chan struct{}, error) {
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, MaxConns: int32(t.PoolMaxConns), AcquireTimeout: 5 * time.Second,
		AsyncCommit: true})
	if err != nil {
		return nil, err
	}
	db.SecretKeys = t.Secrets.keys
	arc, err := t.archiveJob(ctx, db, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	w := job.New(db, db, job.Config{Archive: arc,
		Concurrency: t.Concurrency, PerEndpoint: t.PerEndpoint, Timeout: t.Timeout, Schedule: t.schedule,
		AllowPrivate: t.AllowPrivate, Poll: t.Poll, Retention: t.Retention, Logger: log, Registerer: reg,
		Email: job.EmailConfig{URL: t.SMTPURL, From: t.SMTPFrom}, Keep: t.Keep,
		Maintenance: job.MaintenanceConfig{Window: t.window, MinRatio: t.ReindexMinRatio, MinBytes: int64(t.ReindexMinMB) << 20},
		Tracer:      t.tracer, YieldInFlight: t.YieldInFlight, YieldMaxLag: t.YieldMaxLag})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer db.Close()
		_ = w.Run(ctx)
	}()
	log.Info("tail started", "concurrency", t.Concurrency, "per_endpoint", t.PerEndpoint, "pool_max_conns", t.PoolMaxConns)
	return done, nil
}

func runWorker(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", "Run the asynchronous tail (event relay, webhook deliveries) against DATABASE_URL.\n"+
		"Any number may run; they share the work.", stderr)
	var dbURL, debugAddr string
	var nice int
	var t tailConfig
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.secret(&dbURL, "database-url", "DATABASE_URL", "PostgreSQL `URL` of the primary", maskURL)
	b.str(&debugAddr, "debug-addr", "LEDGERD_WORKER_DEBUG_ADDR", "127.0.0.1:9091", "metrics and pprof listen address (empty: off)")
	// A worker on the API's host yields the CPU to it: under a burst the
	// tail falls behind and catches up after, rather than taking a share
	// of the request path's throughput (docs/scaling.md). On a host of
	// its own the niceness changes nothing.
	b.int(&nice, "nice", "LEDGERD_WORKER_NICE", 10, "CPU niceness of the worker process, 0 to 19 (0: as started)")
	t.bind(b, false, true)
	b.dur(&t.IdempotencyTTL, "idempotency-ttl", "LEDGERD_IDEMPOTENCY_TTL", postgres.DefaultIdempotencyTTL, "the API's idempotency retention: archival waits for it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(b.errs) > 0 {
		return errors.Join(b.errs...)
	}
	if dbURL == "" {
		return errors.New("DATABASE_URL (or --database-url) is required")
	}
	if err := t.validate(); err != nil {
		return err
	}
	if nice < 0 || nice > 19 {
		return errors.New("LEDGERD_WORKER_NICE must be between 0 and 19")
	}
	// Tracing only continues the traces of sampled requests (delivery
	// spans); OTEL_EXPORTER_OTLP_* turn it on, as for serve.
	tel, err := telemetry.New(ctx, telemetry.Options{Out: stdout, SampleRatio: telemetry.DefaultSampleRatio,
		LookupEnv: lookupEnv, Version: version})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	t.tracer = tel.Tracer("ledgerd/job")
	log := tel.Log
	t.Secrets.warn(log)
	if nice > 0 {
		if err := lowerPriority(nice); err != nil {
			log.Warn("CPU priority not lowered", "nice", nice, "err", err)
		}
	}
	check, err := postgres.Open(ctx, postgres.Config{URL: dbURL, MaxConns: 1})
	if err != nil {
		return err
	}
	_, err = check.CheckSchema(ctx)
	check.Close()
	if err != nil {
		return err
	}
	reg := tel.Registry
	if debugAddr != "" {
		ln, err := net.Listen("tcp", debugAddr)
		if err != nil {
			log.Warn("debug listener not started", "addr", debugAddr,
				"err", listenError(debugAddr, "--debug-addr", "LEDGERD_WORKER_DEBUG_ADDR (empty: off)", err).Error())
		} else {
			dbg := debugServer(reg)
			go func() { _ = dbg.Serve(ln) }()
			defer dbg.Close()
			log.Info("debug listener", "addr", ln.Addr().String())
		}
	}
	done, err := startTail(ctx, dbURL, &t, log.With("component", "tail"), reg)
	if err != nil {
		return err
	}
	log.Info("worker running")
	<-done
	log.Info("worker stopped")
	return nil
}
