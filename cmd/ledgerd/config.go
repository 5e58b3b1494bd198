package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/telemetry"
)

// config is what serve (and dev) take from flags and the environment.
// Flags win over environment variables; both are listed by --help.
type config struct {
	DatabaseURL          string
	ReplicaURL           string
	ReplicaMaxLag        time.Duration
	ReplicaPoolMaxConns  int
	Addr                 string
	DebugAddr            string
	AdminKey             string
	BatchMaxItems        int
	RateLimit            float64
	RateBurst            int
	PoolMaxConns         int
	PoolAcquireTimeout   time.Duration
	CommitMaxItems       int
	CommitWindow         time.Duration
	CommitOverlapMin     int
	CommitOverlapFlights int
	IdempotencyTTL       time.Duration
	BalanceCheckpoint    time.Duration
	AccessLog            bool
	ExpiryInterval       time.Duration
	TLSCert              string
	TLSKey               string
	BodyBudget           int
	KeyBodyBudget        int
	AuthFailRate         float64
	AuthFailBurst        int
	MetricAssets         string
	RedisURL             string
	ConcurrencyTarget    time.Duration
	ConcurrencyMin       int
	ConcurrencyMax       int
	ShutdownTimeout      time.Duration
	DrainDelay           time.Duration
	TraceSampleRatio     float64
	Tail                 tailConfig
}

// binder registers flags whose defaults come from environment variables.
type binder struct {
	fs        *flag.FlagSet
	lookupEnv func(string) (string, bool)
	errs      []error
}

// env returns a variable's value ("" when unset).
func (b *binder) env(name string) string {
	v, _ := b.lookupEnv(name)
	return v
}

// str binds a string flag. A variable set to the empty string counts (so
// LEDGERD_DEBUG_ADDR= turns the debug listener off).
func (b *binder) str(p *string, name, env, def, help string) {
	if v, ok := b.lookupEnv(env); ok {
		def = v
	}
	b.fs.StringVar(p, name, def, help+" (env "+env+")")
}

// secret binds a string flag whose value must never be printed: --help and
// the usage shown after a mistyped flag print show(value) as its default
// instead (the flag package prints defaults verbatim).
func (b *binder) secret(p *string, name, env, help string, show func(string) string) {
	*p, _ = b.lookupEnv(env)
	b.fs.Var(&secretValue{p: p, show: show}, name, help+" (env "+env+")")
}

// secretValue is a string flag.Value that prints as a masked form.
type secretValue struct {
	p    *string
	show func(string) string
}

func (v *secretValue) String() string {
	if v == nil || v.p == nil || *v.p == "" {
		return ""
	}
	return v.show(*v.p)
}

func (v *secretValue) Set(s string) error {
	*v.p = s
	return nil
}

// maskKey shows only that a key is set.
func maskKey(string) string { return "(set)" }

// maskURL shows a database URL with its password replaced, in either of
// libpq's forms (URL or key=value); what it cannot parse is shown as "(set)".
func maskURL(s string) string {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "(set)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}

// maskURLs masks each URL of a comma-separated list.
func maskURLs(s string) string {
	parts := splitList(s)
	for i, p := range parts {
		parts[i] = maskURL(p)
	}
	return strings.Join(parts, ",")
}

// maskRedisURL shows a Redis URL without its password.
func maskRedisURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(set)"
	}
	return u.Redacted()
}

// kvPassword matches the value of password= in a key=value connection
// string, quoted or not.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

func (b *binder) int(p *int, name, env string, def int, help string) {
	if v := b.env(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = n
	}
	b.fs.IntVar(p, name, def, help+" (env "+env+")")
}

func (b *binder) float(p *float64, name, env string, def float64, help string) {
	if v := b.env(env); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = n
	}
	b.fs.Float64Var(p, name, def, help+" (env "+env+")")
}

func (b *binder) dur(p *time.Duration, name, env string, def time.Duration, help string) {
	if v := b.env(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = d
	}
	b.fs.DurationVar(p, name, def, help+" (env "+env+")")
}

func (b *binder) boolean(p *bool, name, env string, def bool, help string) {
	if v := b.env(env); v != "" {
		x, err := strconv.ParseBool(v)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = x
	}
	b.fs.BoolVar(p, name, def, help+" (env "+env+")")
}

func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ledgerd %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// bindServe registers the flags of an API node.
func (c *config) bindServe(b *binder, withDB bool) {
	if withDB {
		b.secret(&c.DatabaseURL, "database-url", "DATABASE_URL", "PostgreSQL `URL` of the primary", maskURL)
	}
	b.secret(&c.ReplicaURL, "replica-url", "DATABASE_REPLICA_URL", "comma-separated PostgreSQL `URLs` of read replicas: the GET routes read there (see docs/api.md §Consistency)", maskURLs)
	b.dur(&c.ReplicaMaxLag, "replica-max-lag", "LEDGERD_REPLICA_MAX_LAG", 5*time.Second, "a replica further behind the primary than this takes no reads until it catches up")
	b.int(&c.ReplicaPoolMaxConns, "replica-pool-max-conns", "LEDGERD_REPLICA_POOL_MAX_CONNS", 8, "database connections of this node to each replica")
	b.str(&c.Addr, "addr", "LEDGERD_ADDR", "127.0.0.1:8080", "API listen address")
	b.str(&c.DebugAddr, "debug-addr", "LEDGERD_DEBUG_ADDR", "127.0.0.1:9090", "metrics and pprof listen address (empty: off)")
	b.secret(&c.AdminKey, "admin-key", "LEDGERD_ADMIN_KEY", "bootstrap admin `key`, at least 32 characters (prefer the variable: a flag shows in the process list)", maskKey)
	b.int(&c.BatchMaxItems, "batch-max-items", "LEDGERD_BATCH_MAX_ITEMS", 1000, "most transactions in one batch request (at most 10000)")
	b.float(&c.RateLimit, "rate-limit", "LEDGERD_RATE_LIMIT", 20000, "requests per second per API key without a limit of its own (0: off)")
	b.int(&c.RateBurst, "rate-burst", "LEDGERD_RATE_BURST", 40000, "rate limit burst per API key without a limit of its own")
	b.int(&c.PoolMaxConns, "pool-max-conns", "LEDGERD_POOL_MAX_CONNS", 16, "database connections of this node")
	b.dur(&c.PoolAcquireTimeout, "pool-acquire-timeout", "LEDGERD_POOL_ACQUIRE_TIMEOUT", 2*time.Second, "longest wait for a database connection before answering 503")
	b.int(&c.CommitMaxItems, "commit-max-items", "LEDGERD_COMMIT_MAX_ITEMS", 10000, "group commit: most transactions in one database transaction (several queued requests are merged up to it)")
	b.dur(&c.CommitWindow, "commit-window", "LEDGERD_COMMIT_WINDOW", 0, "group commit: extra wait to gather a batch (0: flush as soon as the previous commit returns)")
	b.int(&c.CommitOverlapMin, "commit-overlap-min", "LEDGERD_COMMIT_OVERLAP_MIN", 256, "group commit: fewest transactions a batch needs to start inserting while the batch ahead still commits (see docs/configuration.md)")
	b.int(&c.CommitOverlapFlights, "commit-overlap-flights", "LEDGERD_COMMIT_OVERLAP_FLIGHTS", batch.DefaultOverlapFlights, "group commit: most batches of a ledger committing at once, all but the oldest inserting while they wait for the lock (1: no overlap; see docs/configuration.md)")
	b.dur(&c.IdempotencyTTL, "idempotency-ttl", "LEDGERD_IDEMPOTENCY_TTL", 7*24*time.Hour, "how long idempotency outcomes are kept (at least 24h)")
	b.dur(&c.BalanceCheckpoint, "balance-checkpoint", "LEDGERD_BALANCE_CHECKPOINT", postgres.DefaultBalanceCheckpoint, "how often a ledger's writer brings the account rows it moved up to date; reads take the newest entry meanwhile (0: in every commit, needed while nodes older than schema 3 still run; see docs/configuration.md)")
	b.dur(&c.ExpiryInterval, "expiry-interval", "LEDGERD_EXPIRY_INTERVAL", 500*time.Millisecond, "how often this node looks for holds past their deadline")
	b.boolean(&c.AccessLog, "access-log", "LEDGERD_ACCESS_LOG", true, "log one JSON line per request")
	b.str(&c.TLSCert, "tls-cert", "LEDGERD_TLS_CERT", "", "PEM certificate `file` (chain) to serve the API over HTTPS itself; needs --tls-key")
	b.str(&c.TLSKey, "tls-key", "LEDGERD_TLS_KEY", "", "PEM private key `file` of --tls-cert")
	b.int(&c.BodyBudget, "body-budget", "LEDGERD_BODY_BUDGET", httpapi.DefaultBodyBudget, "bytes of request bodies this node holds at once; beyond: 503 overloaded")
	b.int(&c.KeyBodyBudget, "key-body-budget", "LEDGERD_KEY_BODY_BUDGET", httpapi.DefaultKeyBodyBudget, "bytes of request bodies one API key may have in flight on this node; beyond: 429 rate_limited")
	b.float(&c.AuthFailRate, "auth-fail-rate", "LEDGERD_AUTH_FAIL_RATE", httpapi.DefaultAuthFailRate, "lookups of unseen key ids per second per client address; beyond: 429 rate_limited")
	b.int(&c.AuthFailBurst, "auth-fail-burst", "LEDGERD_AUTH_FAIL_BURST", httpapi.DefaultAuthFailBurst, "burst of lookups of unseen key ids per client address")
	b.secret(&c.RedisURL, "redis-url", "REDIS_URL", "Redis `URL` (redis://host:port/db) holding the per-key rate limits shared by every node (empty: each node limits alone)", maskRedisURL)
	b.dur(&c.ConcurrencyTarget, "concurrency-target", "LEDGERD_CONCURRENCY_TARGET", httpapi.DefaultConcurrencyTarget, "adaptive concurrency limit: request latency above which the node admits fewer requests at once; the surplus is answered 503 overloaded at once (0: no limit)")
	b.int(&c.ConcurrencyMin, "concurrency-min", "LEDGERD_CONCURRENCY_MIN", httpapi.DefaultConcurrencyMin, "adaptive concurrency limit: fewest requests admitted at once")
	b.int(&c.ConcurrencyMax, "concurrency-max", "LEDGERD_CONCURRENCY_MAX", httpapi.DefaultConcurrencyMax, "adaptive concurrency limit: most requests admitted at once (and the starting point)")
	b.dur(&c.ShutdownTimeout, "shutdown-timeout", "LEDGERD_SHUTDOWN_TIMEOUT", 30*time.Second, "on SIGTERM: longest wait for requests in flight to finish (queued transactions are committed or answered in any case)")
	b.dur(&c.DrainDelay, "drain-delay", "LEDGERD_DRAIN_DELAY", 0, "on SIGTERM: how long /readyz answers 503 while the node still serves, before it stops accepting (a few load-balancer health-check intervals)")
	b.str(&c.MetricAssets, "metric-assets", "LEDGERD_METRIC_ASSETS", "", "comma-separated assets the volume metric names (empty: the first 32 seen); others count as \"other\"")
	b.float(&c.TraceSampleRatio, "trace-sample-ratio", "LEDGERD_TRACE_SAMPLE_RATIO", telemetry.DefaultSampleRatio, "share of new traces recorded when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set; tracing is off otherwise")
	c.Tail.bind(b, true, !withDB) // dev (withDB false) runs the tail by default
}

func (c *config) validate() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL (or --database-url) is required")
	}
	if c.AdminKey != "" && len(c.AdminKey) < 32 {
		return fmt.Errorf("LEDGERD_ADMIN_KEY must be at least 32 characters")
	}
	if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 {
		return fmt.Errorf("LEDGERD_TRACE_SAMPLE_RATIO must be between 0 and 1")
	}
	if c.BatchMaxItems < 1 || c.BatchMaxItems > 10000 {
		return fmt.Errorf("LEDGERD_BATCH_MAX_ITEMS must be between 1 and 10000")
	}
	if c.CommitOverlapFlights < 1 || c.CommitOverlapFlights > 8 {
		return fmt.Errorf("LEDGERD_COMMIT_OVERLAP_FLIGHTS must be between 1 and 8")
	}
	if c.BalanceCheckpoint < 0 {
		return fmt.Errorf("LEDGERD_BALANCE_CHECKPOINT must not be negative")
	}
	if c.IdempotencyTTL < 24*time.Hour {
		return fmt.Errorf("LEDGERD_IDEMPOTENCY_TTL must be at least 24h")
	}
	if c.ReplicaMaxLag <= 0 || c.ReplicaPoolMaxConns < 1 {
		return fmt.Errorf("LEDGERD_REPLICA_MAX_LAG and LEDGERD_REPLICA_POOL_MAX_CONNS must be positive")
	}
	if c.ExpiryInterval <= 0 {
		return fmt.Errorf("LEDGERD_EXPIRY_INTERVAL must be positive")
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		return fmt.Errorf("rate limits must not be negative")
	}
	c.Tail.IdempotencyTTL = c.IdempotencyTTL
	if err := c.Tail.validate(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("LEDGERD_TLS_CERT and LEDGERD_TLS_KEY (or --tls-cert and --tls-key) go together: set both or neither")
	}
	if c.BodyBudget < httpapi.MaxBatchBody || c.KeyBodyBudget < httpapi.MaxBatchBody {
		return fmt.Errorf("LEDGERD_BODY_BUDGET and LEDGERD_KEY_BODY_BUDGET must be at least %d (one full batch)", httpapi.MaxBatchBody)
	}
	if c.ConcurrencyTarget < 0 || c.ConcurrencyMin < 1 || c.ConcurrencyMax < c.ConcurrencyMin {
		return fmt.Errorf("LEDGERD_CONCURRENCY_TARGET must not be negative, and 1 <= LEDGERD_CONCURRENCY_MIN <= LEDGERD_CONCURRENCY_MAX")
	}
	if c.ShutdownTimeout <= 0 || c.DrainDelay < 0 {
		return fmt.Errorf("LEDGERD_SHUTDOWN_TIMEOUT must be positive and LEDGERD_DRAIN_DELAY not negative")
	}
	if c.AuthFailRate <= 0 || c.AuthFailBurst < 1 {
		return fmt.Errorf("LEDGERD_AUTH_FAIL_RATE and LEDGERD_AUTH_FAIL_BURST must be positive")
	}
	return nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
