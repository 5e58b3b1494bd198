package httpapi

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd"
)

// Query parameters: a malformed value is a 422 naming the parameter.

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func limitParam(q url.Values, v *ledgerd.Validation) int {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		v.Add("limit", "must be an integer from 1 to %d", maxLimit)
		return defaultLimit
	}
	return n
}

func timeParam(q url.Values, v *ledgerd.Validation, name string) *time.Time {
	s := q.Get(name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v.Add(name, "must be an RFC 3339 timestamp")
		return nil
	}
	return &t
}

// Cursors are opaque to clients: the keyset position, base64url-encoded.
func encodeCursorValue(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func cursorParam(q url.Values, v *ledgerd.Validation) (string, bool) {
	s := q.Get("cursor")
	if s == "" {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	// A cursor this API issued is a key or a number: text PostgreSQL can
	// compare (valid UTF-8, no NUL). Anything else would fail in the query.
	if err != nil || len(b) == 0 || !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		v.Add("cursor", "is not a cursor this API issued")
		return "", false
	}
	return string(b), true
}
