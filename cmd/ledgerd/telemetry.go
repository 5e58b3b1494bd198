package main

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/ledgerd/ledgerd/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// newLogger and debugServer are the telemetry package's, for subcommands
// that build their logger and debug listener themselves rather than a
// whole telemetry.Telemetry (serve and dev use newTelemetry).
func newLogger(w io.Writer) *slog.Logger { return telemetry.NewLogger(w) }

func debugServer(reg *prometheus.Registry) *http.Server { return telemetry.DebugServer(reg) }
