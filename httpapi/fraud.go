package httpapi

import (
	"context"
	"net/http"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// FraudStore is what the fraud rules API needs from storage;
// *postgres.DB is one.
type FraudStore interface {
	// FraudRules answers every rule off for a ledger that never set any.
	FraudRules(ctx context.Context, ledgerID int64) (*ledgerd.FraudRules, error)
	PutFraudRules(ctx context.Context, ledgerID int64, r *ledgerd.FraudRules) error
}

func (s *Server) fraudRoutes() {
	admin := route{auth: true, role: RoleAdmin, ledger: true}
	put := admin
	put.maxBody = MaxSingleBody
	s.handle("GET /v1/ledgers/{ledger}/fraud-rules", admin, s.getFraudRules)
	s.handle("PUT /v1/ledgers/{ledger}/fraud-rules", put, s.putFraudRules)
}

// fraudStore returns the store, or answers 404 when this node serves no
// fraud rules API (a server built without one, in tests).
func (s *Server) fraudStore(w http.ResponseWriter) FraudStore {
	if s.cfg.Fraud == nil {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "fraud rules are not served by this node"))
	}
	return s.cfg.Fraud
}

// decodeFraudRules reads the rules of a PUT. Every member is optional:
// a rule null or absent is off, a field absent from a rule's object takes
// its default, and freeze_score absent is DefaultFreezeScore (null: no
// flags).
func decodeFraudRules(d *jx.Decoder, v *ledgerd.Validation, r *ledgerd.FraudRules) {
	def := int64(ledgerd.DefaultFreezeScore)
	r.FreezeScore = &def
	// pair reads a rule's object of two integers, a and b.
	pair := func(d *jx.Decoder, path, a, b string, x, y *int64) bool {
		if isNull(d) {
			return false
		}
		object(d, v, path, func(k string) int {
			switch k {
			case a:
				return 0
			case b:
				return 1
			}
			return -1
		}, func(d *jx.Decoder, i int, field string) error {
			n, ok := integer(d, v, field)
			switch {
			case !ok:
			case i == 0:
				*x = n
			default:
				*y = n
			}
			return nil
		})
		return true
	}
	object(d, v, "", func(k string) int {
		switch k {
		case "velocity":
			return 0
		case "large_amount":
			return 1
		case "new_account":
			return 2
		case "freeze_score":
			return 3
		}
		return -1
	}, func(d *jx.Decoder, i int, field string) error {
		switch i {
		case 0:
			x := &ledgerd.VelocityRule{MaxDebits: ledgerd.DefaultVelocityMaxDebits, WindowSeconds: ledgerd.DefaultVelocityWindowSeconds}
			if pair(d, field, "max_debits", "window_seconds", &x.MaxDebits, &x.WindowSeconds) {
				r.Velocity = x
			}
		case 1:
			x := &ledgerd.LargeAmountRule{MultipleOfMedian: ledgerd.DefaultMultipleOfMedian, MinHistory: ledgerd.DefaultMinHistory}
			if pair(d, field, "multiple_of_median", "min_history", &x.MultipleOfMedian, &x.MinHistory) {
				r.LargeAmount = x
			}
		case 2:
			x := &ledgerd.NewAccountRule{MaxAgeSeconds: ledgerd.DefaultNewAccountMaxAge, AmountOver: ledgerd.DefaultNewAccountAmountOver}
			if pair(d, field, "max_age_seconds", "amount_over", &x.MaxAgeSeconds, &x.AmountOver) {
				r.NewAccount = x
			}
		case 3:
			if isNull(d) {
				r.FreezeScore = nil
				return nil
			}
			n, _ := integer(d, v, field)
			r.FreezeScore = &n
		}
		return nil
	})
	if !v.Failed() {
		r.Validate(v)
	}
}

func (s *Server) getFraudRules(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.fraudStore(w)
	if st == nil {
		return
	}
	rules, err := st.FraudRules(r.Context(), rc.ledger.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { wire.EncodeFraudRules(e, rules) })
}

func (s *Server) putFraudRules(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.fraudStore(w)
	if st == nil {
		return
	}
	rules := &ledgerd.FraudRules{}
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) { decodeFraudRules(d, v, rules) }) {
		return
	}
	if err := st.PutFraudRules(r.Context(), rc.ledger.ID, rules); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { wire.EncodeFraudRules(e, rules) })
}
