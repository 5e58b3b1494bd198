package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// accountOr404 checks the account in the path exists (balances history of
// an unknown account is 404, not a row of zeros).
func (s *Server) accountOr404(w http.ResponseWriter, r *http.Request, rc *reqCtx) (*ledgerd.Account, bool) {
	id := r.PathValue("account")
	if ledgerd.ValidAccountID(id) {
		a, err := s.db.Account(r.Context(), rc.ledger.ID, id)
		if err != nil {
			s.fail(w, r, err)
			return nil, false
		}
		if a != nil {
			return a, true
		}
	}
	writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no account %q", id))
	return nil, false
}

func (s *Server) balanceAt(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	at := timeParam(q, &v, "at")
	if at == nil && !v.Failed() {
		v.Add("at", "is required (RFC 3339)")
	}
	if at != nil && at.After(time.Now()) {
		v.Add("at", "must not be in the future")
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	a, ok := s.accountOr404(w, r, rc)
	if !ok {
		return
	}
	id := a.ID
	posted, version, err := s.db.BalanceAt(r.Context(), rc.ledger.ID, id, *at)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.ObjStart()
		e.FieldStart("account")
		e.Str(id)
		e.FieldStart("asset")
		e.Str(a.Asset)
		e.FieldStart("at")
		encodeTime(e, *at)
		e.FieldStart("posted")
		e.Int64(posted)
		e.FieldStart("version")
		e.Int64(version)
		e.ObjEnd()
	})
}

func (s *Server) entries(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	f := ledgerd.StatementFilter{Limit: limitParam(q, &v), From: timeParam(q, &v, "from"), To: timeParam(q, &v, "to")}
	if c, ok := cursorParam(q, &v); ok {
		seq, idx, found := strings.Cut(c, ":")
		n, err1 := strconv.ParseInt(seq, 10, 64)
		i, err2 := strconv.Atoi(idx)
		// The index is compared with a smallint column: a larger one
		// would fail in the query (500) instead of being a bad cursor.
		if !found || err1 != nil || err2 != nil || n < 0 || i < 0 || i > math.MaxInt16 {
			v.Add("cursor", "is not a cursor this API issued")
		}
		f.AfterSeq, f.AfterIndex = n, i
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	a, ok := s.accountOr404(w, r, rc)
	if !ok {
		return
	}
	id := a.ID
	want := f.Limit
	f.Limit++
	st, err := s.db.Statement(r.Context(), rc.ledger.ID, id, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lines, next := page(st.Lines, want, func(l ledgerd.StatementLine) string {
		return strconv.FormatInt(l.Sequence, 10) + ":" + strconv.Itoa(l.PostingIndex)
	})
	writeList(w, lines, encodeEntry, next, func(e *jx.Encoder) {
		e.FieldStart("opening_balance")
		e.Int64(st.Opening)
		e.FieldStart("closing_balance")
		e.Int64(st.Closing)
	})
}

// encodeEntry writes one statement line.
func encodeEntry(e *jx.Encoder, l ledgerd.StatementLine) {
	e.ObjStart()
	e.FieldStart("transaction_id")
	e.Str(l.TransactionID)
	e.FieldStart("sequence")
	e.Int64(l.Sequence)
	e.FieldStart("amount")
	e.Int64(l.Amount)
	e.FieldStart("balance_after")
	e.Int64(l.BalanceAfter)
	e.FieldStart("created_at")
	encodeTime(e, l.CreatedAt)
	e.ObjEnd()
}
