package httpapi

import (
	"net/http"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

func encodeAPIKey(e *jx.Encoder, k *ledgerd.APIKey, secret string) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(k.ID)
	if secret != "" {
		e.FieldStart("key")
		e.Str(secret)
	}
	e.FieldStart("ledger")
	e.Str(k.LedgerName)
	e.FieldStart("role")
	e.Str(k.Role)
	e.FieldStart("created_at")
	encodeTime(e, k.CreatedAt)
	if secret == "" {
		e.FieldStart("revoked_at")
		if k.RevokedAt != nil {
			encodeTime(e, *k.RevokedAt)
		} else {
			e.Null()
		}
	}
	e.ObjEnd()
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var ledgerName, role string
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(k string) int {
			switch k {
			case "ledger":
				return 0
			case "role":
				return 1
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			if isNull(d) {
				return nil
			}
			if i == 0 {
				ledgerName, _ = str(d, v, field)
			} else {
				role, _ = str(d, v, field)
			}
			return nil
		})
		if ledgerName == "" {
			v.Add("ledger", "is required")
		}
		if role == "" {
			v.Add("role", "is required")
		} else if parseRole(role) == RoleNone {
			v.Add("role", `must be "read", "write" or "admin"`)
		}
	}) {
		return
	}
	l, err := s.ledger(r.Context(), ledgerName)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if l == nil || !rc.p.canSee(l.ID) {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no ledger %q", ledgerName))
		return
	}
	id, _, full := newAPIKey()
	_, secret, _ := splitKey(full)
	k := &ledgerd.APIKey{ID: id, LedgerID: l.ID, LedgerName: l.Name, Role: role, SecretHash: hashSecret(secret)}
	if err := s.db.CreateAPIKey(r.Context(), k); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/api-keys/"+k.ID)
	s.auth.forget(id)
	writeJSON(w, http.StatusCreated, func(e *jx.Encoder) { encodeAPIKey(e, k, full) })
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	limit, after, ok := cursorQuery(w, q)
	if !ok {
		return
	}
	ledgerID := rc.p.LedgerID // a ledger admin sees its own ledger's keys
	if name := q.Get("ledger"); name != "" {
		l, err := s.ledger(r.Context(), name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if l == nil || !rc.p.canSee(l.ID) {
			writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no ledger %q", name))
			return
		}
		ledgerID = l.ID
	}
	keys, err := s.db.ListAPIKeys(r.Context(), ledgerID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	keys, next := page(keys, limit, func(k *ledgerd.APIKey) string { return k.ID })
	writeList(w, keys, func(e *jx.Encoder, k *ledgerd.APIKey) { encodeAPIKey(e, k, "") }, next, nil)
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	k, err := s.db.APIKeyByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if k == nil || !rc.p.canSee(k.LedgerID) {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no API key %q", id))
		return
	}
	if err := s.db.RevokeAPIKey(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auth.forget(id)
	w.WriteHeader(http.StatusNoContent)
}
