// Package wire renders the API's resources as JSON, one way for every
// place that shows them: the HTTP answers, the events API and the webhook
// payloads. A resource that reads differently in an event than in the
// answer that created it would break clients that handle both.
package wire

import (
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// TimeLayout is RFC 3339, UTC, with microseconds (PostgreSQL's precision).
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// PGTimeFormat is TimeLayout as PostgreSQL's to_char spells it, for JSON
// completed inside the database (see AccountCreatedPrefix). Applied to a
// timestamptz AT TIME ZONE 'UTC'.
const PGTimeFormat = `YYYY-MM-DD"T"HH24:MI:SS.US"Z"`

// EncodeTime writes t in TimeLayout.
func EncodeTime(e *jx.Encoder, t time.Time) {
	var buf [32]byte
	e.ByteStr(t.UTC().AppendFormat(buf[:0], TimeLayout))
}

// EncodeMetadata writes metadata with its keys in bytewise order.
func EncodeMetadata(e *jx.Encoder, m map[string]string) {
	e.Raw(ledgerd.AppendMetadataJSON(nil, m))
}

// EncodeTransaction writes the transaction object (docs/api.md
// §Transactions).
func EncodeTransaction(e *jx.Encoder, t *ledgerd.Transaction) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(t.ID)
	e.FieldStart("sequence")
	e.Int64(t.Sequence)
	e.FieldStart("status")
	e.Str(string(t.Status))
	e.FieldStart("postings")
	if t.RawPostings != nil {
		e.Raw(t.RawPostings)
	} else {
		e.Raw(ledgerd.AppendPostingsJSON(nil, t.Postings))
	}
	e.FieldStart("metadata")
	if len(t.RawMetadata) > 0 {
		e.Raw(t.RawMetadata)
	} else {
		e.Raw(ledgerd.AppendMetadataJSON(nil, t.Metadata))
	}
	e.FieldStart("reference")
	if t.Reference != "" {
		e.Str(t.Reference)
	} else {
		e.Null()
	}
	e.FieldStart("created_at")
	EncodeTime(e, t.CreatedAt)
	if t.ExpiresAt != nil {
		e.FieldStart("expires_at")
		EncodeTime(e, *t.ExpiresAt)
	}
	optID(e, "pending_id", t.PendingID)
	optID(e, "resolved_by", t.ResolvedBy)
	optID(e, "reverses", t.Reverses)
	optID(e, "reversed_by", t.ReversedBy)
	if t.RawRisk != nil {
		e.FieldStart("risk")
		e.Raw(t.RawRisk)
	}
	e.ObjEnd()
}

func optID(e *jx.Encoder, name, v string) {
	if v != "" {
		e.FieldStart(name)
		e.Str(v)
	}
}

// EncodeAccount writes the account object (docs/api.md §Accounts).
// created_at comes last: AccountCreatedPrefix relies on it.
func EncodeAccount(e *jx.Encoder, a *ledgerd.Account) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(a.ID)
	e.FieldStart("asset")
	e.Str(a.Asset)
	e.FieldStart("min_balance")
	if a.MinBalance != nil {
		e.Int64(*a.MinBalance)
	} else {
		e.Null()
	}
	e.FieldStart("status")
	if a.Status == "" {
		e.Str(ledgerd.AccountActive)
	} else {
		e.Str(a.Status)
	}
	e.FieldStart("metadata")
	EncodeMetadata(e, a.Metadata)
	e.FieldStart("balance")
	e.ObjStart()
	e.FieldStart("posted")
	e.Int64(a.Balance.Posted)
	e.FieldStart("pending_debits")
	e.Int64(a.Balance.PendingDebits)
	e.FieldStart("pending_credits")
	e.Int64(a.Balance.PendingCredits)
	e.FieldStart("available")
	avail, _ := a.Balance.Available()
	e.Int64(avail)
	e.ObjEnd()
	e.FieldStart("version")
	e.Int64(a.Version)
	e.FieldStart("created_at")
	EncodeTime(e, a.CreatedAt)
	e.ObjEnd()
}

// EncodeEvent writes the event object: {"id", "type", "ledger",
// "created_at", "data"}, data being the resource already rendered.
func EncodeEvent(e *jx.Encoder, ev *ledgerd.Event) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(ev.ID)
	e.FieldStart("type")
	e.Str(string(ev.Type))
	e.FieldStart("ledger")
	e.Str(ev.Ledger)
	e.FieldStart("created_at")
	EncodeTime(e, ev.CreatedAt)
	e.FieldStart("data")
	if len(ev.Data) > 0 {
		e.Raw(ev.Data)
	} else {
		e.Null()
	}
	e.ObjEnd()
}

// AppendTransaction appends what EncodeTransaction writes to b.
func AppendTransaction(b []byte, t *ledgerd.Transaction) []byte {
	return appendWith(b, func(e *jx.Encoder) { EncodeTransaction(e, t) })
}

// AppendAccount appends what EncodeAccount writes to b.
func AppendAccount(b []byte, a *ledgerd.Account) []byte {
	return appendWith(b, func(e *jx.Encoder) { EncodeAccount(e, a) })
}

// AppendEvent appends what EncodeEvent writes to b.
func AppendEvent(b []byte, ev *ledgerd.Event) []byte {
	return appendWith(b, func(e *jx.Encoder) { EncodeEvent(e, ev) })
}

func appendWith(b []byte, fn func(e *jx.Encoder)) []byte {
	var e jx.Encoder
	e.SetBytes(b)
	fn(&e)
	return e.Bytes()
}
