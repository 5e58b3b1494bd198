package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// timeLayout is RFC 3339, UTC, with microseconds (PostgreSQL's precision).
const timeLayout = "2006-01-02T15:04:05.000000Z"

func encodeTime(e *jx.Encoder, t time.Time) {
	var buf [32]byte
	e.ByteStr(t.UTC().AppendFormat(buf[:0], timeLayout))
}

func encodeTransaction(e *jx.Encoder, t *ledgerd.Transaction) {
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
	encodeTime(e, t.CreatedAt)
	if t.ExpiresAt != nil {
		e.FieldStart("expires_at")
		encodeTime(e, *t.ExpiresAt)
	}
	optID(e, "pending_id", t.PendingID)
	optID(e, "resolved_by", t.ResolvedBy)
	optID(e, "reverses", t.Reverses)
	optID(e, "reversed_by", t.ReversedBy)
	e.ObjEnd()
}

func optID(e *jx.Encoder, name, v string) {
	if v != "" {
		e.FieldStart(name)
		e.Str(v)
	}
}

func encodeMetadata(e *jx.Encoder, m map[string]string) {
	e.Raw(ledgerd.AppendMetadataJSON(nil, m))
}

func encodeAccount(e *jx.Encoder, a *ledgerd.Account) {
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
	e.FieldStart("metadata")
	encodeMetadata(e, a.Metadata)
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
	encodeTime(e, a.CreatedAt)
	e.ObjEnd()
}

// writeJSON sends what fn encodes with the given status.
func writeJSON(w http.ResponseWriter, st int, fn func(e *jx.Encoder)) {
	e := jx.GetEncoder()
	defer jx.PutEncoder(e)
	fn(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(e.Bytes())))
	w.WriteHeader(st)
	_, _ = w.Write(e.Bytes())
}

// encodeCursor renders a keyset cursor, or null.
func encodeCursor(e *jx.Encoder, c string) {
	e.FieldStart("next_cursor")
	if c == "" {
		e.Null()
	} else {
		e.Str(c)
	}
}

// encoded returns what fn encodes, as bytes the caller owns.
func encoded(fn func(e *jx.Encoder)) []byte {
	e := jx.GetEncoder()
	defer jx.PutEncoder(e)
	fn(e)
	return append([]byte(nil), e.Bytes()...)
}
