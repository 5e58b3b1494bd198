package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// healthz is liveness: the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.Obj(func(e *jx.Encoder) { e.Field("status", func(e *jx.Encoder) { e.Str("ok") }) })
	})
}

// readyz is ready when the database answers and its schema is new enough.
// The probe needs no key, so the cause of "not ready" goes to the log and
// never to the caller: a database error can name hosts, users and tables.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	if s.draining.Load() {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "not ready: shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.db.CheckSchema(ctx); err != nil {
		s.log.Warn("not ready", "request_id", w.Header().Get("Request-Id"), "err", err)
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "not ready"))
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.Obj(func(e *jx.Encoder) { e.Field("status", func(e *jx.Encoder) { e.Str("ready") }) })
	})
}

// Drain makes /readyz answer 503 from now on, so that a load balancer
// stops sending new requests while those in flight finish; the node keeps
// serving whatever still reaches it.
func (s *Server) Drain() { s.draining.Store(true) }
