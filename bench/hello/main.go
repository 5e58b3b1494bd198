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
	"io"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/bench/serve"
)

var body = []byte(`{"hello":"world"}` + "\n")

func main() {
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
	// The same limits as ledgerd's API server (cmd/ledgerd/serve.go).
	serve.Main("hello", &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10})
}
