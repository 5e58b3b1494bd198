package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// decodeBody checks syntax (400) and then runs fn, answering 422 with every
// field error it collected. It reports whether the handler may go on.
func decodeBody(w http.ResponseWriter, body []byte, fn func(d *jx.Decoder, v *ledgerd.Validation)) bool {
	if err := wellFormed(body); err != nil {
		writeProblem(w, err)
		return false
	}
	var v ledgerd.Validation
	fn(jx.DecodeBytes(body), &v)
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return false
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.Obj(func(e *jx.Encoder) { e.Field("status", func(e *jx.Encoder) { e.Str("ok") }) })
	})
}

// readyz is ready when the database answers and its schema is new enough.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	_, err := s.db.CheckSchema(ctx)
	if err != nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "not ready: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.Obj(func(e *jx.Encoder) { e.Field("status", func(e *jx.Encoder) { e.Str("ready") }) })
	})
}

func encodeLedger(e *jx.Encoder, l *ledgerd.Ledger) {
	e.ObjStart()
	e.FieldStart("name")
	e.Str(l.Name)
	e.FieldStart("created_at")
	encodeTime(e, l.CreatedAt)
	e.FieldStart("last_sequence")
	e.Int64(l.LastSequence)
	e.ObjEnd()
}

func (s *Server) createLedger(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var name string
	if !decodeBody(w, rc.body, func(d *jx.Decoder, v *ledgerd.Validation) {
		seen := false
		object(d, v, "", func(k string) int {
			if k == "name" {
				return 0
			}
			return -1
		}, func(d *jx.Decoder, _ int, field string) error {
			if isNull(d) {
				return nil
			}
			seen = true
			name, _ = str(d, v, field)
			return nil
		})
		switch {
		case !seen:
			v.Add("name", "is required")
		case name != "" && !ledgerd.ValidLedgerName(name):
			v.Add("name", "must match ^[a-z0-9][a-z0-9_-]{0,62}$")
		case name == "":
			v.Add("name", "must not be empty")
		}
	}) {
		return
	}
	l, err := s.db.CreateLedger(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, func(e *jx.Encoder) { encodeLedger(e, l) })
}

func (s *Server) getLedger(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	// The cached ledger row is for routing; last_sequence must be fresh.
	l, err := s.db.LedgerByName(r.Context(), rc.ledger.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeLedger(e, l) })
}
