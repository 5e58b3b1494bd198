// Command ledgerd is the ledgerd transaction-processing platform: one
// binary with a subcommand per role (see `ledgerd --help`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ledgerd:", err)
		os.Exit(1)
	}
}

const usage = `ledgerd — a double-entry ledger API on PostgreSQL

Usage: ledgerd <command> [flags]

Commands:
  dev        run the whole platform locally: starts its own PostgreSQL, migrates, serves
  serve      run an API node against DATABASE_URL
  worker     run the asynchronous tail (events, webhook deliveries) against DATABASE_URL
  migrate    apply the embedded schema migrations to DATABASE_URL
  archive    move months older than each ledger's retention to Parquet files in object storage
  restore    re-attach a ledger's archived month from its files
  verify     recompute the audit chains and every balance from DATABASE_URL; exit 1 on a mismatch
  loadtest   generate load against a running ledgerd and check its invariants
  version    print the version

Run 'ledgerd <command> --help' for a command's flags.
`

// run is the whole program, so tests can drive it like main does.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], lookupEnv, stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], lookupEnv, stdout, stderr)
	case "worker":
		return runWorker(ctx, args[1:], lookupEnv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], lookupEnv, stdout, stderr)
	case "archive":
		return runArchive(ctx, args[1:], lookupEnv, stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], lookupEnv, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], lookupEnv, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, args[1:], lookupEnv, stdout, stderr)
	case "version", "--version":
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(version, commit, commitDirty, bi))
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
