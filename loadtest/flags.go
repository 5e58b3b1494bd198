package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Defaults that depend on the mode or on the environment, named so that
// --help and the code agree.
const (
	defaultURL          = "http://127.0.0.1:8080"
	defaultClosedClient = 64
	defaultOpenInFlight = 512
	maxServerBatch      = 10000 // LEDGERD_BATCH_MAX_ITEMS can be raised at most this far (docs/api.md)
)

// Workload names (--workload).
const (
	workloadTransfer = "transfer"
	workloadBatch    = "batch"
	workloadMixed    = "mixed"
	workloadTwoPhase = "twophase"
	// workloadGet GETs --path from --url, nothing else: no setup, no
	// check. It is the reference measurement of bench/ (a trivial HTTP
	// handler under the same client and concurrency), and can probe any
	// read-only endpoint.
	workloadGet = "get"
)

// Loop modes (--mode).
const (
	modeClosed = "closed"
	modeOpen   = "open"
)

var (
	assetPattern  = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}$`)
	ledgerPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// config is everything a run needs, resolved from flags and environment.
type config struct {
	URL            string
	Key            string
	Ledger         string
	Reuse          bool
	Accounts       int
	Asset          string
	Initial        int64
	Mode           string
	Clients        int
	Rate           float64
	Duration       time.Duration
	Requests       int64
	Warmup         time.Duration
	Workload       string
	Path           string
	BatchSize      int
	Zipf           float64
	ReadRatio      float64
	ReferenceRatio float64
	RejectRatio    float64
	JSON           bool
	NoCheck        bool
	Timeout        time.Duration
	Seed           uint64
	CPUProfile     string
}

// parseFlags reads args (without the subcommand name). Flags win over the
// environment, the environment over built-in defaults; the API key is never
// shown as a default in --help so that it does not leak into terminals and
// CI logs. It returns flag.ErrHelp for --help, after printing the usage.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer, now time.Time) (config, error) {
	var c config
	fs := flag.NewFlagSet("ledgerd loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ledgerd loadtest [flags]

Generates load against a running ledgerd over its HTTP API, reports
throughput and latency, and afterwards checks the ledger's invariants
through the same API. Without --reuse it first creates a ledger, a funding
account "world" and --accounts accounts "acct:NNNNNN" funded with --initial.

Flags:
`)
		fs.PrintDefaults()
	}

	fs.StringVar(&c.URL, "url", "", "base URL of the ledgerd API (env LEDGERD_URL, default "+defaultURL+")")
	fs.StringVar(&c.Key, "key", "", "API key; setup needs the bootstrap admin key unless --reuse (env LEDGERD_ADMIN_KEY)")
	fs.StringVar(&c.Ledger, "ledger", "", "ledger name (default loadtest-<unix time>)")
	fs.BoolVar(&c.Reuse, "reuse", false, "use an existing ledger and its accounts; skip setup")
	fs.IntVar(&c.Accounts, "accounts", 10000, "number of accounts acct:000000… to create and choose from")
	fs.StringVar(&c.Asset, "asset", "USD", "asset of all accounts")
	fs.Int64Var(&c.Initial, "initial", 1000000, "funding per account from world, in minor units")
	fs.StringVar(&c.Mode, "mode", modeClosed, "closed (clients send back to back) or open (constant arrival --rate)")
	fs.IntVar(&c.Clients, "clients", defaultClosedClient, fmt.Sprintf("concurrent clients (closed loop), or max requests in flight (open loop, where the default is %d)", defaultOpenInFlight))
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: operations started per second (required with --mode open)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured run time after --warmup (0 = until --requests)")
	fs.Int64Var(&c.Requests, "requests", 0, "stop after this many measured requests (0 = unbounded; a two-phase pair is never split)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "load run before the measured part, excluded from the statistics")
	fs.StringVar(&c.Workload, "workload", workloadTransfer, "transfer | batch | mixed | twophase | get (GET --path only: no setup, no check, no key needed)")
	fs.StringVar(&c.Path, "path", "/", "get: path (with any query) that every request GETs from --url")
	fs.IntVar(&c.BatchSize, "batch-size", 1000, "transactions per request for --workload batch")
	fs.Float64Var(&c.Zipf, "zipf", 0, "account choice skew: 0 = uniform, s > 1 (e.g. 1.1) = Zipf")
	fs.Float64Var(&c.ReadRatio, "read-ratio", 0.2, "mixed: fraction of operations that are reads")
	fs.Float64Var(&c.ReferenceRatio, "reference-ratio", 0.5, "fraction of transfers carrying a unique reference")
	fs.Float64Var(&c.RejectRatio, "reject-ratio", 0.005, "fraction of transfers that deliberately overdraw (expect insufficient_funds)")
	fs.BoolVar(&c.JSON, "json", false, "print the final report as one JSON object on stdout")
	fs.BoolVar(&c.NoCheck, "no-check", false, "skip the correctness check after the run")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout; a request that times out is retried once after the run")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed for the workload (0 = random; the report prints the one used)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the load generator itself (warmup and load, not setup or check) to `file`, for go tool pprof")

	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if c.URL == "" {
		c.URL = getenv("LEDGERD_URL")
	}
	if c.URL == "" {
		c.URL = defaultURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Key == "" {
		c.Key = getenv("LEDGERD_ADMIN_KEY")
	}
	if c.Ledger == "" {
		c.Ledger = fmt.Sprintf("loadtest-%d", now.Unix())
	}
	if c.Mode == modeOpen && !set["clients"] {
		c.Clients = defaultOpenInFlight
	}
	return c, c.validate()
}

// validate rejects combinations that would make a run meaningless, before any
// request is sent.
func (c config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		bad("--url %q: want http:// or https://", c.URL)
	}
	if c.Key == "" && c.Workload != workloadGet {
		bad("no API key: pass --key or set LEDGERD_ADMIN_KEY")
	}
	if !ledgerPattern.MatchString(c.Ledger) {
		bad("--ledger %q: want %s", c.Ledger, ledgerPattern)
	}
	if !assetPattern.MatchString(c.Asset) {
		bad("--asset %q: want %s", c.Asset, assetPattern)
	}
	if c.Accounts < 2 {
		bad("--accounts must be at least 2 (a transfer needs two distinct accounts)")
	}
	if c.Initial < 0 {
		bad("--initial must not be negative")
	}
	switch c.Mode {
	case modeClosed:
	case modeOpen:
		if !(c.Rate > 0) {
			bad("--mode open needs --rate > 0")
		}
	default:
		bad("--mode %q: want closed or open", c.Mode)
	}
	if c.Clients < 1 {
		bad("--clients must be at least 1")
	}
	switch c.Workload {
	case workloadTransfer, workloadBatch, workloadMixed, workloadTwoPhase:
	case workloadGet:
		if !strings.HasPrefix(c.Path, "/") {
			bad("--path %q: want an absolute path starting with /", c.Path)
		}
		if c.Reuse {
			bad("--reuse has no meaning with --workload get (it sets nothing up)")
		}
	default:
		bad("--workload %q: want transfer, batch, mixed, twophase or get", c.Workload)
	}
	if c.BatchSize < 1 || c.BatchSize > maxServerBatch {
		bad("--batch-size must be in 1..%d", maxServerBatch)
	}
	if c.Duration < 0 || c.Warmup < 0 || c.Requests < 0 {
		bad("--duration, --warmup and --requests must not be negative")
	}
	if c.Duration == 0 && c.Requests == 0 {
		bad("--duration 0 needs --requests > 0, or the run would never end")
	}
	if c.Workload == workloadTwoPhase && c.Requests == 1 {
		bad("--requests 1 cannot hold a two-phase pair (hold + capture)")
	}
	if c.Zipf != 0 && !(c.Zipf > 1) {
		bad("--zipf must be 0 (uniform) or greater than 1")
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"--read-ratio", c.ReadRatio}, {"--reference-ratio", c.ReferenceRatio}, {"--reject-ratio", c.RejectRatio}} {
		if !(r.v >= 0 && r.v <= 1) {
			bad("%s must be in [0, 1]", r.name)
		}
	}
	if c.Timeout <= 0 {
		bad("--timeout must be positive")
	}
	return errors.Join(errs...)
}

// requestsPerOp is how many HTTP requests one workload operation sends: the
// --requests budget is spent in whole operations.
func (c config) requestsPerOp() int64 {
	if c.Workload == workloadTwoPhase {
		return 2
	}
	return 1
}

// opLimit is the number of measured operations --requests allows (0 = no limit).
func (c config) opLimit() int64 {
	return c.Requests / c.requestsPerOp()
}
