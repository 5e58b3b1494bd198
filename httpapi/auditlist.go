package httpapi

import (
	"net/http"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/audit"
	"github.com/ledgerd/ledgerd/wire"
)

// listAudit lists the ledger's audit entries oldest first (docs/api.md
// §Audit). after is exclusive; an id that is not an entry of this ledger
// is 422.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	limit := limitParam(q, &v)
	var after int64
	if a := q.Get("after"); a != "" {
		pos, ok := audit.ParseID(a)
		if ok {
			exists, err := s.db.AuditEntryExists(r.Context(), rc.ledger.ID, pos)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			ok = exists
		}
		if !ok {
			v.Add("after", "is not the id of an audit entry of this ledger")
		}
		after = pos
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	entries, err := s.db.ListAudit(r.Context(), rc.ledger.ID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	entries, next := pageAfter(entries, limit, func(en *ledgerd.AuditEntry) string { return audit.ID(en.Position) })
	writeList(w, entries, encodeAuditEntry, next, nil)
}

// encodeAuditEntry writes the entry object; hash and prev_hash are null
// until the chainer reaches it.
func encodeAuditEntry(e *jx.Encoder, en *ledgerd.AuditEntry) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(audit.ID(en.Position))
	e.FieldStart("at")
	wire.EncodeTime(e, en.At)
	e.FieldStart("actor")
	e.Str(en.Actor)
	e.FieldStart("request_id")
	e.Str(en.RequestID)
	e.FieldStart("action")
	e.Str(en.Action)
	e.FieldStart("target")
	e.Str(en.Target)
	e.FieldStart("status")
	e.Int(en.Status)
	for _, f := range [2][2]string{{"hash", en.Hash}, {"prev_hash", en.PrevHash}} {
		e.FieldStart(f[0])
		if f[1] == "" {
			e.Null()
		} else {
			e.Str(f[1])
		}
	}
	e.ObjEnd()
}
