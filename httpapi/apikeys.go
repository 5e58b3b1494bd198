package httpapi

import (
	"math"
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
	e.FieldStart("rate_limit")
	if l := k.RateLimit; l != nil {
		e.ObjStart()
		e.FieldStart("per_second")
		e.Float64(l.PerSecond)
		e.FieldStart("burst")
		e.Int(l.Burst)
		e.ObjEnd()
	} else {
		e.Null()
	}
	e.ObjEnd()
}

// decodeRateLimit reads a key's own limit {"per_second", "burst"} at
// field; null is the node's default (nil). per_second is a JSON number
// (0.5 is one request every 2 s), burst an integer; ledgerd.RateLimit
// says which values are allowed.
func decodeRateLimit(d *jx.Decoder, v *ledgerd.Validation, field string) *ledgerd.RateLimit {
	if isNull(d) {
		return nil
	}
	if d.Next() != jx.Object {
		v.Add(field, `must be an object {"per_second", "burst"} or null`)
		_ = d.Skip()
		return nil
	}
	var l ledgerd.RateLimit
	var read [2]bool // per_second, burst: present and of the right type
	var f fields
	object(d, v, field, func(k string) int {
		switch k {
		case "per_second":
			return 0
		case "burst":
			return 1
		}
		return -1
	}, func(d *jx.Decoder, i int, path string) error {
		f.first(i)
		if i == 0 {
			l.PerSecond, read[0] = number(d, v, path)
			return nil
		}
		var n int64
		if n, read[1] = integer(d, v, path); read[1] {
			// Beyond int's range is beyond the burst's too.
			l.Burst = int(max(min(n, ledgerd.MaxRateBurst+1), -1))
		}
		return nil
	})
	names := [2]string{join(field, "per_second"), join(field, "burst")}
	for i, name := range names {
		if !f.has(i) {
			v.Add(name, "is required")
		}
	}
	// The range checks, for the members that were read: a member of the
	// wrong type already has its error.
	var r ledgerd.Validation
	l.Validate(&r, field)
	if err := r.Err(); err != nil {
		for _, fe := range err.Fields {
			if (fe.Field == names[0] && read[0]) || (fe.Field == names[1] && read[1]) {
				v.Add(fe.Field, "%s", fe.Message)
			}
		}
	}
	return &l
}

// number reads a JSON number as a float64 (not a string, not null).
func number(d *jx.Decoder, v *ledgerd.Validation, field string) (float64, bool) {
	if d.Next() != jx.Number {
		v.Add(field, "must be a number")
		_ = d.Skip()
		return 0, false
	}
	x, err := d.Float64()
	if err != nil || math.IsInf(x, 0) {
		v.Add(field, "must be a finite number")
		return 0, false
	}
	return x, true
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var ledgerName, role string
	var limit *ledgerd.RateLimit
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(k string) int {
			switch k {
			case "ledger":
				return 0
			case "role":
				return 1
			case "rate_limit":
				return 2
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			if i == 2 {
				limit = decodeRateLimit(d, v, field)
				return nil
			}
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
	k := &ledgerd.APIKey{ID: id, LedgerID: l.ID, LedgerName: l.Name, Role: role, SecretHash: hashSecret(secret), RateLimit: limit}
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

// apiKeyVisible reports whether key id exists for a request that acts on
// it. A key the caller may not see is answered as one that does not exist
// (404), so that a ledger admin learns nothing of other ledgers' keys; on
// false the answer is written.
func (s *Server) apiKeyVisible(w http.ResponseWriter, r *http.Request, rc *reqCtx, id string) bool {
	k, err := s.db.APIKeyByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if k == nil || !rc.p.canSee(k.LedgerID) {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no API key %q", id))
		return false
	}
	return true
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	if !s.apiKeyVisible(w, r, rc, id) {
		return
	}
	if err := s.db.RevokeAPIKey(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auth.forget(id)
	w.WriteHeader(http.StatusNoContent)
}

// patchAPIKey sets or clears a key's own rate limit. Whoever may revoke a
// key may change its limit: the bootstrap key any key, a ledger admin its
// ledger's. Every node applies the change when its cache of the key
// expires (keyCacheTTL), this node at once.
func (s *Server) patchAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var limit *ledgerd.RateLimit
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		var f fields
		object(d, v, "", func(k string) int {
			if k == "rate_limit" {
				return 0
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			f.first(i)
			limit = decodeRateLimit(d, v, field)
			return nil
		})
		if !f.has(0) {
			v.Add("rate_limit", `is required (null: the node's default)`)
		}
	}) {
		return
	}
	id := r.PathValue("id")
	if !s.apiKeyVisible(w, r, rc, id) {
		return
	}
	k, err := s.db.SetAPIKeyRateLimit(r.Context(), id, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if k == nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no API key %q", id))
		return
	}
	s.auth.forget(id)
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeAPIKey(e, k, "") })
}
