package main

import (
	"context"
	"io"

	"github.com/ledgerd/ledgerd/loadtest"
)

func runLoadtest(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	return loadtest.Main(ctx, args, getenv, stdout, stderr)
}
