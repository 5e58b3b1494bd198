package loadtest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

// liveInterval is how often the live line is printed to stderr.
const liveInterval = time.Second

// Main runs `ledgerd loadtest` with args (flags, without the subcommand name).
// It returns an error (non-nil => exit 1) when the run fails or the post-run
// correctness check fails. Live progress goes to stderr, the final report to
// stdout.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return run(ctx, cfg, stdout, stderr)
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() | 1
	}
	runID, err := newRunID()
	if err != nil {
		return err
	}
	c, err := newClient(cfg.URL, cfg.Key, cfg.Timeout, max(cfg.Clients, setupParallel))
	if err != nil {
		return err
	}
	defer c.close()

	var baseline int64
	if cfg.Workload != workloadGet { // get sets nothing up and checks nothing
		if cfg.Reuse {
			if err := checkReuse(ctx, c, cfg); err != nil {
				return err
			}
		} else if err := setup(ctx, c, cfg, runID, stderr); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		if baseline, err = lastSequence(ctx, c, cfg.Ledger); err != nil {
			return err
		}
	}

	st := newStats()
	l := newLoad(cfg, c, st, runID)
	l.maxSeq.Store(baseline)
	workers := make([]*worker, cfg.Clients)
	for i := range workers {
		workers[i] = l.newWorker(i, cfg.Seed)
	}

	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	start := time.Now()
	var measureStart time.Time
	var pc *pacer
	if cfg.Mode == modeOpen {
		pc = newPacer(start, cfg.Rate, cfg.Warmup, cfg.Duration, cfg.opLimit())
		measureStart = pc.measureStart()
	} else {
		measureStart = start.Add(cfg.Warmup)
	}
	stopLive := startLive(st, pc, start, measureStart, stderr)
	if pc != nil {
		runOpen(ctx, workers, pc)
	} else {
		var end time.Time
		if cfg.Duration > 0 {
			end = measureStart.Add(cfg.Duration)
		}
		runClosed(ctx, workers, measureStart, end, cfg.opLimit())
	}
	finish := time.Now()
	stopLive()
	profErr := stopProfile()

	rep := buildReport(cfg, st, max(finish.Sub(measureStart), 0))
	if pc != nil {
		rep.Backlog = &backlogReport{Max: pc.maxBacklog.Load(), LateStarts: pc.late.Load()}
	}

	var runErr error
	switch {
	case ctx.Err() != nil:
		rep.Check.Status = checkSkipped
		runErr = fmt.Errorf("interrupted: %w", context.Cause(ctx))
	default:
		rep.InDoubt = l.settle(ctx)
		if cfg.NoCheck || cfg.Workload == workloadGet {
			rep.Check.Status = checkSkipped
			break
		}
		in := checkInput{
			baseline: baseline, created: l.created.Load() + rep.InDoubt.Created, unresolved: rep.InDoubt.Unresolved,
			overdrafts: rep.Overdrafts.Sent, overdraftsAccepted: rep.Overdrafts.Accepted,
		}
		// Read what the run wrote, however far behind a replica that
		// serves the check lags (its pages come from several requests).
		c.consistent.Store(true)
		results, err := check(ctx, c, cfg.Ledger, in)
		rep.Check.Results = results
		switch {
		case err != nil:
			rep.Check.Status, rep.Check.Error = checkError, err.Error()
			runErr = fmt.Errorf("correctness check could not run: %w", err)
		case !allOK(results):
			rep.Check.Status = checkFailed
			runErr = errors.New("correctness check failed")
		default:
			rep.Check.Status = checkPassed
		}
	}
	if runErr == nil {
		runErr = loadFailure(rep)
	}

	if cfg.JSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	return errors.Join(runErr, profErr, err)
}

// loadFailure turns a run that measured nothing useful into an error, so
// that a script does not record a misconfigured run as a benchmark result.
func loadFailure(rep *report) error {
	switch {
	case rep.Requests == 0:
		return errors.New("no measured requests: is --duration longer than a request, or --warmup too long?")
	case rep.Transfers == 0 && rep.Reads == 0:
		return fmt.Errorf("no request succeeded (errors: %s)", formatCounts(rep.Errors))
	}
	return nil
}

func allOK(results []checkResult) bool {
	for _, r := range results {
		if !r.OK {
			return false
		}
	}
	return true
}

// buildReport turns the measured statistics into the report's figures.
func buildReport(cfg config, st *stats, measured time.Duration) *report {
	st.mu.Lock()
	defer st.mu.Unlock()
	rep := &report{
		URL: cfg.URL, Ledger: cfg.Ledger, Workload: cfg.Workload, Mode: cfg.Mode,
		Clients: cfg.Clients, Accounts: cfg.Accounts, Zipf: cfg.Zipf, Seed: cfg.Seed,
		WarmupSeconds:   cfg.Warmup.Seconds(),
		DurationSeconds: measured.Seconds(),
		Requests:        st.requests,
		Transfers:       st.acked,
		Reads:           st.reads,
		Rejected:        cloneCounts(st.rejected),
		Errors:          cloneCounts(st.errors),
		Latency:         latencyOf(st.latency),
		Overdrafts:      overdraftReport{Sent: st.overdrafts, Accepted: st.overdraftsAccepted},
	}
	if cfg.Mode == modeOpen {
		rep.Rate = cfg.Rate
	}
	if cfg.Workload == workloadBatch {
		rep.BatchSize = cfg.BatchSize
	}
	if cfg.Workload == workloadGet {
		rep.Path, rep.Ledger, rep.Accounts = cfg.Path, "", 0
	}
	if s := measured.Seconds(); s > 0 {
		rep.Throughput = float64(st.acked) / s
		rep.RequestRate = float64(st.requests) / s
	}
	return rep
}

func cloneCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// startLive prints the live line every liveInterval until the returned
// function is called.
func startLive(st *stats, pc *pacer, start, measureStart time.Time, stderr io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(liveInterval)
		defer t.Stop()
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var backlog int64
				if pc != nil {
					backlog = pc.backlog(now)
				}
				line := st.liveLine(now.Sub(start), now.Sub(last), now.Before(measureStart), backlog, pc != nil)
				last = now
				fmt.Fprintln(stderr, line)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// newRunID returns a random id that keeps this run's idempotency keys and
// references apart from every other run's, whatever --seed says.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// startCPUProfile profiles the load generator into path ("" = no profile)
// until the returned function is called.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}
