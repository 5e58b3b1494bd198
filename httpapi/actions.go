package httpapi

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-faster/jx"
	"github.com/google/uuid"
	"github.com/ledgerd/ledgerd"
)

// Two-phase resolutions and reversals: each appends a new transaction
// through the same group-commit writer as any posting, and answers 200
// with it (docs/api.md §Holds, §Reversals).

// postHold captures a pending hold (POST …/post), in full or in part.
func (s *Server) postHold(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	a := &ledgerd.Action{Kind: ledgerd.ActionPost}
	if !decodeActionBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(k string) int {
			if k == "amounts" {
				return 0
			}
			return -1
		}, func(d *jx.Decoder, _ int, field string) error {
			if isNull(d) {
				return nil
			}
			if d.Next() != jx.Array {
				v.Add(field, "must be an array of integers")
				return d.Skip()
			}
			a.Amounts = []int64{}
			return d.Arr(func(d *jx.Decoder) error {
				f := field + "[" + strconv.Itoa(len(a.Amounts)) + "]"
				n, ok := integer(d, v, f)
				if ok && n < 0 {
					v.Add(f, "must not be negative")
				}
				if len(a.Amounts) > ledgerd.MaxPostings {
					return nil // the count check against the hold reports it
				}
				a.Amounts = append(a.Amounts, n)
				return nil
			})
		})
	}) {
		return
	}
	s.act(w, r, rc, a, &ledgerd.TransactionRequest{})
}

// voidHold releases a pending hold (POST …/void).
func (s *Server) voidHold(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !decodeActionBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(string) int { return -1 }, nil)
	}) {
		return
	}
	s.act(w, r, rc, &ledgerd.Action{Kind: ledgerd.ActionVoid}, &ledgerd.TransactionRequest{})
}

func (s *Server) reverse(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	a := &ledgerd.Action{Kind: ledgerd.ActionReverse}
	req := &ledgerd.TransactionRequest{}
	if !decodeActionBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		object(d, v, "", func(k string) int {
			switch k {
			case "metadata":
				return 0
			case "reference":
				return 1
			case "force":
				return 2
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			if isNull(d) {
				return nil
			}
			switch i {
			case 0:
				req.Metadata = metadata(d, v, field)
			case 1:
				req.Reference, _ = str(d, v, field)
			case 2:
				a.Force, _ = boolean(d, v, field)
			}
			return nil
		})
		ledgerd.ValidateMetadata(v, "metadata", req.Metadata, false)
		if utf8.RuneCountInString(req.Reference) > ledgerd.MaxReferenceLen {
			v.Add("reference", "at most %d characters", ledgerd.MaxReferenceLen)
		} else if strings.IndexByte(req.Reference, 0) >= 0 {
			v.Add("reference", "must not contain U+0000") // PostgreSQL text cannot hold it
		}
	}) {
		return
	}
	if a.Force && rc.p.Role < RoleAdmin {
		s.forbidden(w, r, rc, "forcing a reversal past min_balance needs an admin key")
		return
	}
	s.act(w, r, rc, a, req)
}

func (s *Server) act(w http.ResponseWriter, r *http.Request, rc *reqCtx, a *ledgerd.Action, req *ledgerd.TransactionRequest) {
	key, kerr := idempotencyKey(r)
	if kerr != nil {
		writeProblem(w, kerr)
		return
	}
	id := r.PathValue("id")
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no transaction %q", id))
		return
	}
	a.Target = u.String()
	it := &ledgerd.WriteItem{Request: req, Action: a, IdempotencyKey: key}
	if key != "" {
		it.RequestHash = actionHash(r.Method, r.URL.Path, a, req)
	}
	if err := s.writer.Submit(r.Context(), rc.ledger.ID, &ledgerd.WriteUnit{Items: []*ledgerd.WriteItem{it}, Audit: ledgerd.AuditFrom(r.Context())}); err != nil {
		s.fail(w, r, err)
		return
	}
	if it.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if it.Err != nil && it.Err.Code == ledgerd.CodeNotFound {
		// Answered as GET of the target is: 410 archived when it left
		// with its month (503 while the month is on its way out). Only
		// this branch reads more: actions that find their target cost
		// what they did.
		if _, err := s.db.Transaction(r.Context(), rc.ledger.ID, a.Target); err != nil {
			var le *ledgerd.Error
			if errors.As(err, &le) {
				s.cfg.Metrics.observeItem(it, le)
			}
			s.fail(w, r, err)
			return
		}
	}
	s.cfg.Metrics.observeItem(it, it.Err)
	if it.Err != nil {
		writeProblem(w, it.Err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeTransaction(e, it.Result) })
}

func actionHash(method, path string, a *ledgerd.Action, req *ledgerd.TransactionRequest) []byte {
	b := make([]byte, 0, 128)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, '\n')
	if a.Amounts == nil {
		b = append(b, "all"...)
	}
	for _, n := range a.Amounts {
		b = strconv.AppendInt(b, n, 10)
		b = append(b, ',')
	}
	b = ledgerd.AppendMetadataJSON(b, req.Metadata)
	b = ledgerd.AppendJSONString(b, req.Reference)
	b = strconv.AppendBool(b, a.Force)
	h := sha256.Sum256(b)
	return h[:]
}
