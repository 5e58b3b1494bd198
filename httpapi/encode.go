package httpapi

import (
	"net/http"
	"strconv"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd/wire"
)

// The resources render through package wire, which the events API and
// the webhook payloads share.
var (
	encodeTime        = wire.EncodeTime
	encodeTransaction = wire.EncodeTransaction
	encodeMetadata    = wire.EncodeMetadata
	encodeAccount     = wire.EncodeAccount
)

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
