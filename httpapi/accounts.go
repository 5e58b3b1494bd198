package httpapi

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

const (
	acID = iota
	acAsset
	acMinBalance
	acMetadata
)

func accountMember(k string) int {
	switch k {
	case "id":
		return acID
	case "asset":
		return acAsset
	case "min_balance":
		return acMinBalance
	case "metadata":
		return acMetadata
	}
	return -1
}

// decodeAccount decodes a new account at path. min_balance is the one
// optional field where null is not absence: null means unbounded, absence
// the default 0.
func decodeAccount(d *jx.Decoder, v *ledgerd.Validation, path string, a *ledgerd.NewAccount) {
	zero := int64(0)
	a.MinBalance = &zero
	object(d, v, path, accountMember, func(d *jx.Decoder, i int, field string) error {
		if isNull(d) {
			if i == acMinBalance {
				a.MinBalance = nil
			}
			return nil
		}
		switch i {
		case acID:
			a.ID, _ = str(d, v, field)
		case acAsset:
			a.Asset, _ = str(d, v, field)
		case acMinBalance:
			if n, ok := integer(d, v, field); ok {
				a.MinBalance = &n
			}
		case acMetadata:
			a.Metadata = metadata(d, v, field)
		}
		return nil
	})
	prefix := path
	if prefix != "" {
		prefix += "."
	}
	a.Validate(v, prefix)
}

func canonicalAccount(method, path string, a *ledgerd.NewAccount) []byte {
	b := hashStart(method, path)
	b = ledgerd.AppendJSONString(b, a.ID)
	b = ledgerd.AppendJSONString(b, a.Asset)
	if a.MinBalance == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *a.MinBalance, 10)
	}
	b = ledgerd.AppendMetadataJSON(b, a.Metadata)
	h := sha256.Sum256(b)
	return h[:]
}

// canonicalPatch binds a PATCH to its key: method, path, and the patch
// with metadata keys in order (member order and white space ignored).
func canonicalPatch(method, path string, p *ledgerd.AccountPatch) []byte {
	b := hashStart(method, path)
	keys := make([]string, 0, len(p.Metadata))
	for k := range p.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for _, k := range keys {
		b = ledgerd.AppendJSONString(b, k)
		b = append(b, ':')
		if v := p.Metadata[k]; v == nil {
			b = append(b, "null"...)
		} else {
			b = ledgerd.AppendJSONString(b, *v)
		}
		b = append(b, ',')
	}
	b = append(b, '}')
	switch {
	case !p.SetMinBalance:
		b = append(b, '-')
	case p.MinBalance == nil:
		b = append(b, "null"...)
	default:
		b = strconv.AppendInt(b, *p.MinBalance, 10)
	}
	b = append(b, p.Status...)
	if p.Reason != nil {
		b = ledgerd.AppendJSONString(b, *p.Reason)
	}
	h := sha256.Sum256(b)
	return h[:]
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var na ledgerd.NewAccount
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) { decodeAccount(d, v, "", &na) }) {
		return
	}
	key, kerr := idempotencyKey(r)
	if kerr != nil {
		writeProblem(w, kerr)
		return
	}
	var idem *ledgerd.Idempotency
	if key != "" {
		idem = &ledgerd.Idempotency{Key: key, Hash: canonicalAccount(r.Method, r.URL.Path, &na)}
	}
	a, replayed, err := s.db.CreateAccount(r.Context(), rc.ledger.ID, &na, idem)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := http.StatusCreated
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		st = http.StatusOK
	} else {
		w.Header().Set("Location", "/v1/ledgers/"+rc.ledger.Name+"/accounts/"+a.ID)
	}
	writeJSON(w, st, func(e *jx.Encoder) { encodeAccount(e, a) })
}

func (s *Server) createAccounts(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var items []ledgerd.NewAccount
	var itemErrs []*ledgerd.Error
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		seen := onlyMember(d, v, "accounts", func(d *jx.Decoder, field string) error {
			if d.Next() != jx.Array {
				v.Add(field, "must be an array")
				return d.Skip()
			}
			return d.Arr(func(d *jx.Decoder) error {
				if len(items) >= ledgerd.MaxAccountBatchItems {
					itemErrs = append(itemErrs, nil)
					items = append(items, ledgerd.NewAccount{})
					return d.Skip()
				}
				var iv ledgerd.Validation
				var na ledgerd.NewAccount
				decodeAccount(d, &iv, "", &na)
				items = append(items, na)
				itemErrs = append(itemErrs, iv.Err())
				return nil
			})
		})
		switch {
		case !seen:
			v.Add("accounts", "is required")
		case len(items) > ledgerd.MaxAccountBatchItems:
			v.Add("accounts", "at most %d accounts per batch", ledgerd.MaxAccountBatchItems)
		}
	}) {
		return
	}
	valid := make([]ledgerd.NewAccount, 0, len(items))
	for i := range items {
		if itemErrs[i] == nil {
			valid = append(valid, items[i])
		}
	}
	var results []ledgerd.AccountResult
	if len(valid) > 0 {
		var err error
		if results, err = s.db.CreateAccounts(r.Context(), rc.ledger.ID, valid); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.ObjStart()
		e.FieldStart("results")
		e.ArrStart()
		j := 0
		for i := range items {
			e.ObjStart()
			err := itemErrs[i]
			if err == nil {
				res := results[j]
				j++
				if res.Err == nil {
					e.FieldStart("status")
					e.Int(http.StatusCreated)
					e.FieldStart("account")
					encodeAccount(e, res.Account)
					e.ObjEnd()
					continue
				}
				err = res.Err
			}
			e.FieldStart("status")
			e.Int(status(err.Code))
			e.FieldStart("error")
			encodeProblem(e, err, -1)
			e.ObjEnd()
		}
		e.ArrEnd()
		e.ObjEnd()
	})
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("account")
	var a *ledgerd.Account
	if ledgerd.ValidAccountID(id) {
		var err error
		if a, err = s.db.Account(r.Context(), rc.ledger.ID, id); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if a == nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no account %q", id))
		return
	}
	writeCacheable(w, r, encoded(func(e *jx.Encoder) { encodeAccount(e, a) }))
}

func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var p ledgerd.AccountPatch
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(k string) int {
			switch k {
			case "metadata":
				return 0
			case "min_balance":
				return 1
			case "status":
				return 2
			case "reason":
				return 3
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			switch i {
			case 2:
				if st, ok := str(d, v, field); ok {
					if st != ledgerd.AccountActive && st != ledgerd.AccountFrozen {
						v.Add(field, "must be active or frozen")
					}
					p.Status = st
				}
				return nil
			case 3:
				if isNull(d) {
					return nil
				}
				if reason, ok := str(d, v, field); ok {
					if len(reason) > ledgerd.MaxMetadataValueLen || !utf8.ValidString(reason) || strings.IndexByte(reason, 0) >= 0 {
						v.Add(field, "must be at most %d bytes of text without U+0000", ledgerd.MaxMetadataValueLen)
					}
					p.Reason = &reason
				}
				return nil
			}
			if i == 1 {
				p.SetMinBalance = true
				if isNull(d) {
					return nil // null: unbounded
				}
				if n, ok := integer(d, v, field); ok {
					p.MinBalance = &n
				}
				return nil
			}
			if isNull(d) {
				return nil
			}
			p.Metadata = metadataPatch(d, v, field)
			return nil
		})
		set := map[string]string{}
		for k, val := range p.Metadata {
			if val != nil {
				set[k] = *val
			} else if k == "" || len(k) > ledgerd.MaxMetadataKeyLen {
				v.Add("metadata", "keys must be 1 to %d bytes", ledgerd.MaxMetadataKeyLen)
			}
		}
		ledgerd.ValidateMetadata(v, "metadata", set, true)
	}) {
		return
	}
	key, kerr := idempotencyKey(r)
	if kerr != nil {
		writeProblem(w, kerr)
		return
	}
	if p.SetMinBalance && rc.p.Role < RoleAdmin {
		s.forbidden(w, r, rc, "changing min_balance needs an admin key")
		return
	}
	if p.Status != "" && rc.p.Role < RoleAdmin {
		s.forbidden(w, r, rc, "freezing or unfreezing an account needs an admin key")
		return
	}
	id := r.PathValue("account")
	var a *ledgerd.Account
	var replayed bool
	if ledgerd.ValidAccountID(id) {
		var idem *ledgerd.Idempotency
		if key != "" {
			idem = &ledgerd.Idempotency{Key: key, Hash: canonicalPatch(r.Method, r.URL.Path, &p)}
		}
		var err error
		if a, replayed, err = s.db.PatchAccount(r.Context(), rc.ledger.ID, id, &p, idem); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if a == nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no account %q", id))
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeAccount(e, a) })
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	f := ledgerd.AccountFilter{Prefix: q.Get("prefix"), Limit: limitParam(q, &v)}
	f.After, _ = cursorParam(q, &v)
	for k, vals := range q {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			f.Metadata[k[len("metadata["):len(k)-1]] = vals[0]
		}
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	want := f.Limit
	f.Limit++
	accts, err := s.db.ListAccounts(r.Context(), rc.ledger.ID, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	accts, next := page(accts, want, func(a *ledgerd.Account) string { return a.ID })
	writeList(w, accts, encodeAccount, next, nil)
}
