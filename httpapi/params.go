package httpapi

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd"
)

// Query parameters: a malformed value is a 422 naming the parameter, and so
// is an unknown one (a typo such as acount= must not silently widen a
// list).

// unknownQuery returns the names in the query string that the route does
// not take, sorted, each once. An allowed name ending in "[]" takes every
// name of that form ("metadata[]" takes metadata[owner]). A query string
// that does not parse is reported as the parameter "query".
func unknownQuery(raw string, allowed []string) []string {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	var out []string
	if err != nil {
		out = append(out, "query")
	}
	for name := range q {
		if !queryAllowed(name, allowed) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func queryAllowed(name string, allowed []string) bool {
	for _, a := range allowed {
		if p, ok := strings.CutSuffix(a, "[]"); ok {
			if len(name) > len(p)+2 && strings.HasPrefix(name, p+"[") && strings.HasSuffix(name, "]") {
				return true
			}
		} else if a == name {
			return true
		}
	}
	return false
}

func addUnknownQuery(v *ledgerd.Validation, names []string) {
	for _, n := range names {
		if n == "query" {
			v.Add(n, "is not a well-formed query string")
			continue
		}
		v.Add(n, "is not a query parameter of this route")
	}
}

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
