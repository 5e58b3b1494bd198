package wire

import (
	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// EncodeRisk writes a transaction's risk member (docs/fraud.md).
func EncodeRisk(e *jx.Encoder, k *ledgerd.Risk) {
	e.ObjStart()
	e.FieldStart("score")
	e.Int(k.Score)
	e.FieldStart("reasons")
	e.ArrStart()
	for _, r := range k.Reasons {
		e.ObjStart()
		e.FieldStart("rule")
		e.Str(r.Rule)
		e.FieldStart("account")
		e.Str(r.Account)
		e.FieldStart("detail")
		e.Str(r.Detail)
		e.ObjEnd()
	}
	e.ArrEnd()
	e.ObjEnd()
}

// AppendRisk appends what EncodeRisk writes to b.
func AppendRisk(b []byte, k *ledgerd.Risk) []byte {
	return appendWith(b, func(e *jx.Encoder) { EncodeRisk(e, k) })
}

// EncodeFraudRules writes a ledger's rules, every member present (null
// for a rule that is off).
func EncodeFraudRules(e *jx.Encoder, r *ledgerd.FraudRules) {
	pair := func(name, a string, x int64, b string, y int64) {
		e.FieldStart(name)
		e.ObjStart()
		e.FieldStart(a)
		e.Int64(x)
		e.FieldStart(b)
		e.Int64(y)
		e.ObjEnd()
	}
	e.ObjStart()
	if v := r.Velocity; v != nil {
		pair("velocity", "max_debits", v.MaxDebits, "window_seconds", v.WindowSeconds)
	} else {
		e.FieldStart("velocity")
		e.Null()
	}
	if l := r.LargeAmount; l != nil {
		pair("large_amount", "multiple_of_median", l.MultipleOfMedian, "min_history", l.MinHistory)
	} else {
		e.FieldStart("large_amount")
		e.Null()
	}
	if n := r.NewAccount; n != nil {
		pair("new_account", "max_age_seconds", n.MaxAgeSeconds, "amount_over", n.AmountOver)
	} else {
		e.FieldStart("new_account")
		e.Null()
	}
	e.FieldStart("freeze_score")
	if r.FreezeScore != nil {
		e.Int64(*r.FreezeScore)
	} else {
		e.Null()
	}
	e.ObjEnd()
}
