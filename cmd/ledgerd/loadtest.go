package main

import (
	"context"
	"io"

	"github.com/ledgerd/ledgerd/loadtest"
)

func runLoadtest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return loadtest.Main(ctx, args, getenv, stdout, stderr)
}
