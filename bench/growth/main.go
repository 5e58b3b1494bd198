// Command growth is the growth benchmark's data loader and latency probe
// (bench/growth.sh):
//
//	growth load  -url DATABASE_URL -postings N [-accounts 100000] [-months 12]
//	growth probe -api URL -key KEY [-n 2000] [-accounts 100000] [-months 12]
//
// load writes a ledger "bench" straight into the monthly partitions with
// COPY, in the shape the write path leaves (running balances, versions,
// commit rows, account checkpoints); probe measures the latency of the
// five requests of the benchmark through the HTTP API and prints one JSON
// object.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: growth load|probe [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "load":
		err = load(ctx, os.Args[2:])
	case "probe":
		err = probe(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "growth:", err)
		os.Exit(1)
	}
}
