package httpapi

import (
	"net/http"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

func encodeLedger(e *jx.Encoder, l *ledgerd.Ledger) {
	e.ObjStart()
	e.FieldStart("name")
	e.Str(l.Name)
	e.FieldStart("created_at")
	encodeTime(e, l.CreatedAt)
	e.FieldStart("last_sequence")
	e.Int64(l.LastSequence)
	e.FieldStart("hot_months")
	e.Int(l.HotMonths)
	e.ObjEnd()
}

func (s *Server) createLedger(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var name string
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		seen := onlyMember(d, v, "name", func(d *jx.Decoder, field string) error {
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
	w.Header().Set("Location", "/v1/ledgers/"+l.Name)
	s.ledgerCreated(l)
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

// listLedgers lists the ledgers the key can see: every ledger for the
// bootstrap key, its own for a scoped key.
func (s *Server) listLedgers(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	limit, after, ok := cursorQuery(w, r.URL.Query())
	if !ok {
		return
	}
	ls, err := s.db.ListLedgers(r.Context(), rc.p.LedgerID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ls, next := page(ls, limit, func(l *ledgerd.Ledger) string { return l.Name })
	writeList(w, ls, encodeLedger, next, nil)
}

// patchLedger sets a ledger's retention policy, hot_months
// (docs/data-lifecycle.md): the only member a ledger lets change.
func (s *Server) patchLedger(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	months := 0
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		seen := onlyMember(d, v, "hot_months", func(d *jx.Decoder, field string) error {
			if n, ok := integer(d, v, field); ok {
				if n < 1 || n > ledgerd.MaxHotMonths {
					v.Add(field, "must be between 1 and %d", ledgerd.MaxHotMonths)
				}
				months = int(n)
			}
			return nil
		})
		if !seen {
			v.Add("hot_months", "is required")
		}
	}) {
		return
	}
	l, err := s.db.SetHotMonths(r.Context(), rc.ledger.ID, months)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeLedger(e, l) })
}
