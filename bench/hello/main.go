// Command hello is the reference HTTP server of bench/: a trivial Go
// handler behind the same net/http server settings as ledgerd's API, so
// that `ledgerd loadtest --workload get` against it measures what the
// machine, the Go HTTP stack and the load generator can do at all — the
// ceiling any ledgerd figure is read against (bench/RESULTS.md#targets).
//
//	go run ./bench/hello [-addr 127.0.0.1:0]
//
// It prints "listening on ADDR" once bound (port 0 picks a free one) and
// serves GET /hello with a small JSON body until SIGINT or SIGTERM; POST
// /v1/traces swallows OTLP trace exports (a sink for benching with tracing).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var body = []byte(`{"hello":"world"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback; port 0 picks a free one)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	// An OTLP/HTTP trace sink that keeps nothing: a node benched with
	// OTEL_EXPORTER_OTLP_ENDPOINT pointing here pays the full cost of
	// tracing (sampling, spans, export) without a collector to install.
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The same limits as ledgerd's API server (cmd/ledgerd/serve.go).
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	fmt.Printf("listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
