package telemetry

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DebugServer serves metrics and profiles on a separate listener (loopback
// by default), so that neither is exposed with the API. It needs no
// authentication, so it serves nothing that holds a secret: pprof's
// cmdline handler, which prints the command line (and a key given with
// --admin-key), is left out.
func DebugServer(reg *prometheus.Registry) *http.Server {
	mux := http.NewServeMux()
	if reg != nil {
		// OpenMetrics when the scraper asks for it: the request latency
		// histogram's exemplars (trace ids of sampled requests) travel
		// only in that format.
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		// Enough to send a heap profile or the metrics; net/http/pprof
		// extends it by ?seconds= for a CPU profile or a trace, which
		// answer only at the end.
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}
