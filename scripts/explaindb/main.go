// Command explaindb regenerates the plans in docs/queries.md: it starts a
// throwaway PostgreSQL (pgcluster: temporary directory, loopback only),
// migrates it with `ledgerd migrate`, bulk-loads a ledger with load.sql
// (1,000,000 transactions = 2,000,000 entries by default), ANALYZEs, and
// runs EXPLAIN (ANALYZE, BUFFERS) on every query the API and the workers
// run, with representative parameters. The plans replace the generated
// section of the output file; the cluster is stopped at the end, also on
// Ctrl-C.
//
// Run it through scripts/explain.sh, which builds ledgerd first.
//
// Each query is prepared as a named statement, as pgx does for the API
// (QueryExecModeCacheStatement), and explained twice: with a custom plan
// (planned for the parameter values, what the first executions on a
// connection get) and with the generic plan (what PostgreSQL may switch a
// pooled connection to after five executions). The generic plan is printed
// only when its shape differs.
//
// Every statement explained is the server's own: postgres/*.go exports
// its SQL (constants, or the builders of the filtered lists), and
// queries.go and tailqueries.go add only example arguments, so the plans
// cannot drift from what the server runs.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/pgcluster"
)

//go:embed load.sql
var loadSQL string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "explaindb:", err)
		os.Exit(1)
	}
}

// run starts the cluster, migrates and loads it, and rewrites the
// generated section of the output file.
func run(ctx context.Context) error {
	ledgerd := flag.String("ledgerd", "", "path of a built ledgerd binary (for `ledgerd migrate`)")
	out := flag.String("out", "docs/queries.md", "markdown file whose generated section is replaced")
	nTx := flag.Int("transactions", 1_000_000, "transactions to load (one posting, two entries each)")
	nAcc := flag.Int("accounts", 10_000, "accounts to load")
	days := flag.Int("days", 90, "the transactions spread over this many days before now")
	flag.Parse()
	if *ledgerd == "" {
		return errors.New("-ledgerd is required")
	}
	if *nTx < 1000 || *nAcc < 100 {
		return errors.New("need at least 1000 transactions and 100 accounts")
	}

	logf("starting a temporary PostgreSQL")
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{
		// A throwaway cluster: durability settings do not change plans,
		// and the bulk load is faster without them.
		"fsync":                "off",
		"full_page_writes":     "off",
		"synchronous_commit":   "off",
		"max_wal_size":         "8GB",
		"shared_buffers":       "512MB",
		"autovacuum":           "off", // VACUUM ANALYZE runs explicitly after the load
		"jit":                  "off",
		"max_parallel_workers": "2",
	}})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping PostgreSQL")
		if err := cl.Stop(); err != nil {
			logf("stop: %v", err)
		}
	}()
	if err := cl.CreateDatabase(ctx, "ledgerd", ""); err != nil {
		return err
	}
	url := cl.URL("ledgerd")

	logf("ledgerd migrate")
	mig := exec.CommandContext(ctx, *ledgerd, "migrate")
	mig.Env = append(os.Environ(), "DATABASE_URL="+url)
	mig.Stdout, mig.Stderr = os.Stderr, os.Stderr
	if err := mig.Run(); err != nil {
		return fmt.Errorf("ledgerd migrate: %w", err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	if err := load(ctx, conn, *nTx, *nAcc, *days); err != nil {
		return err
	}
	facts, err := describe(ctx, conn)
	if err != nil {
		return err
	}
	v, err := pickValues(ctx, conn, *nTx, *nAcc)
	if err != nil {
		return err
	}
	if err := pickTailValues(ctx, conn, v); err != nil {
		return fmt.Errorf("tail values: %w", err)
	}

	section, err := render(ctx, conn, facts, v)
	if err != nil {
		return err
	}
	if err := replaceSection(*out, section); err != nil {
		return err
	}
	logf("wrote %s", *out)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "explaindb: "+format+"\n", args...)
}
