package httpapi

import (
	"crypto/sha256"
	"net/http"
	"strconv"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// requestHash (after req.Encode) binds an Idempotency-Key to the method, the concrete path and
// the decoded body: member order, white space and null-for-absent make no
// difference. A batch item hashes as if it were posted alone.
func requestHash(method, path string, req *ledgerd.TransactionRequest) []byte {
	b := hashStart(method, path)
	b = append(b, req.EncodedPostings...)
	b = append(b, req.EncodedMetadata...)
	b = ledgerd.AppendJSONString(b, req.Reference)
	b = strconv.AppendBool(b, req.Pending)
	b = strconv.AppendInt(b, req.PendingTimeout, 10)
	h := sha256.Sum256(b)
	return h[:]
}

func transactionsPath(ledger string) string { return "/v1/ledgers/" + ledger + "/transactions" }

func (s *Server) postTransaction(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var req ledgerd.TransactionRequest
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) { decodeTransaction(d, v, "", &req, nil) }) {
		return
	}
	key, kerr := idempotencyKey(r)
	if kerr != nil {
		writeProblem(w, kerr)
		return
	}
	req.Encode()
	it := &ledgerd.WriteItem{Request: &req, IdempotencyKey: key}
	if key != "" {
		it.RequestHash = requestHash(http.MethodPost, transactionsPath(rc.ledger.Name), &req)
	}
	if err := s.writer.Submit(r.Context(), rc.ledger.ID, &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{it}, Audit: ledgerd.AuditFrom(r.Context())}); err != nil {
		s.fail(w, r, err)
		return
	}
	if it.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	s.cfg.Metrics.observeItem(it, it.Err)
	if it.Err != nil {
		writeProblem(w, it.Err)
		return
	}
	st := http.StatusCreated
	if it.Replayed {
		st = http.StatusOK
	} else {
		w.Header().Set("Location", transactionsPath(rc.ledger.Name)+"/"+it.Result.ID)
	}
	writeJSON(w, st, func(e *jx.Encoder) { encodeTransaction(e, it.Result) })
}

// postBatch posts many transactions through the same group-commit path as
// single requests. Items apply in request order; an item's field paths are
// relative to the item.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var atomic bool
	var items []*ledgerd.WriteItem
	var itemErrs []*ledgerd.Error
	max := s.cfg.BatchMaxItems
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		seen := false
		object(d, v, "", func(k string) int {
			switch k {
			case "atomic":
				return 0
			case "transactions":
				return 1
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			if isNull(d) {
				return nil
			}
			if i == 0 {
				atomic, _ = boolean(d, v, field)
				return nil
			}
			seen = true
			if d.Next() != jx.Array {
				v.Add(field, "must be an array")
				return d.Skip()
			}
			return d.Arr(func(d *jx.Decoder) error {
				if len(items) >= max {
					items = append(items, nil)
					return d.Skip()
				}
				var iv ledgerd.Validation
				it := &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{}}
				decodeTransaction(d, &iv, "", it.Request, &it.IdempotencyKey)
				items = append(items, it)
				itemErrs = append(itemErrs, iv.Err())
				return nil
			})
		})
		switch {
		case !seen:
			v.Add("transactions", "is required")
		case len(items) == 0:
			v.Add("transactions", "at least one transaction is required")
		case len(items) > max:
			v.Add("transactions", "at most %d transactions per batch", max)
		}
	}) {
		return
	}
	path := transactionsPath(rc.ledger.Name)
	unit := &ledgerd.WriteUnit{Atomic: atomic, Audit: ledgerd.AuditFrom(r.Context()), Items: make([]*ledgerd.WriteItem, 0, len(items))}
	for i, it := range items {
		if itemErrs[i] != nil {
			if atomic {
				writeProblemIndex(w, itemErrs[i], i)
				return
			}
			continue
		}
		it.Request.Encode()
		if it.IdempotencyKey != "" {
			it.RequestHash = requestHash(http.MethodPost, path, it.Request)
		}
		unit.Items = append(unit.Items, it)
	}
	if len(unit.Items) > 0 {
		if err := s.writer.Submit(r.Context(), rc.ledger.ID, unit); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	for i, it := range items {
		if itemErrs[i] != nil {
			s.cfg.Metrics.observeItem(nil, itemErrs[i])
		} else {
			s.cfg.Metrics.observeItem(it, it.Err)
		}
	}
	if atomic {
		for i, it := range items {
			if it.Err != nil {
				if it.Replayed {
					w.Header().Set("Idempotent-Replayed", "true")
				}
				writeProblemIndex(w, it.Err, i)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.ObjStart()
		e.FieldStart("results")
		e.ArrStart()
		for i, it := range items {
			e.ObjStart()
			err := itemErrs[i]
			if err == nil {
				err = it.Err
			}
			if err != nil {
				e.FieldStart("status")
				e.Int(status(err.Code))
				e.FieldStart("error")
				encodeProblem(e, err, -1)
			} else {
				e.FieldStart("status")
				if it.Replayed {
					e.Int(http.StatusOK)
				} else {
					e.Int(http.StatusCreated)
				}
				e.FieldStart("transaction")
				encodeTransaction(e, it.Result)
			}
			if it.Replayed {
				e.FieldStart("replayed")
				e.Bool(true)
			}
			e.ObjEnd()
		}
		e.ArrEnd()
		e.ObjEnd()
	})
}

func (s *Server) getTransaction(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	if body := s.txCache.get(rc.ledger.ID, id); body != nil {
		writeCacheable(w, r, body)
		return
	}
	t, err := s.db.Transaction(r.Context(), rc.ledger.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if t == nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no transaction %q", id))
		return
	}
	body := encoded(func(e *jx.Encoder) { encodeTransaction(e, t) })
	if immutable(t) && t.RiskSettled {
		s.txCache.put(rc.ledger.ID, id, body)
	}
	writeCacheable(w, r, body)
}

func (s *Server) listTransactions(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	f := ledgerd.TxFilter{Account: q.Get("account"), Reference: q.Get("reference"), Limit: limitParam(q, &v)}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			v.Add("after", "must be a sequence number (an integer ≥ 0)")
		}
		f.After = n
	}
	if c, ok := cursorParam(q, &v); ok {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			v.Add("cursor", "is not a cursor this API issued")
		}
		f.After = max(f.After, n)
	}
	f.From, f.To = timeParam(q, &v, "from"), timeParam(q, &v, "to")
	if f.Account != "" && !ledgerd.ValidAccountID(f.Account) {
		v.Add("account", "is not a valid account id")
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	want := f.Limit
	f.Limit++
	txs, err := s.db.ListTransactions(r.Context(), rc.ledger.ID, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	txs, next := page(txs, want, func(t *ledgerd.Transaction) string { return strconv.FormatInt(t.Sequence, 10) })
	writeList(w, txs, encodeTransaction, next, nil)
}
