// Package audit chains each ledger's audit entries into a hash chain, off
// the request path (docs/audit.md).
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/ledgerd/ledgerd"
)

// TimeLayout is how "at" appears in the API and in the canonical encoding.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// ZeroHash is the prev_hash of a ledger's first entry.
var ZeroHash = strings.Repeat("0", 64)

// Canonical is the entry's canonical encoding: the JSON object of its
// fields action, actor, at, id, request_id, status, target — keys sorted,
// no white space, every character outside printable ASCII escaped as
// \uXXXX (what Python's json.dumps(e, sort_keys=True,
// separators=(",", ":")) writes, so that an auditor's script reproduces
// it byte for byte).
func Canonical(e *ledgerd.AuditEntry) []byte {
	b := make([]byte, 0, 160+len(e.Target))
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	b = append(b, `,"at":`...)
	b = appendString(b, e.At.UTC().Format(TimeLayout))
	b = append(b, `,"id":`...)
	b = appendString(b, ID(e.Position))
	b = append(b, `,"request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"target":`...)
	b = appendString(b, e.Target)
	return append(b, '}')
}

// Hash is hex(SHA-256(prev + Canonical(e))), prev being the previous
// entry's hash in hex (ZeroHash for the first).
func Hash(prev string, e *ledgerd.AuditEntry) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(Canonical(e))
	return hex.EncodeToString(h.Sum(nil))
}

// ID is the entry's id as the API shows it.
func ID(position int64) string { return "aud_" + strconv.FormatInt(position, 10) }

// ParseID is the position of an entry id, or false.
func ParseID(id string) (int64, bool) {
	s, ok := strings.CutPrefix(id, "aud_")
	if !ok || s == "" || s[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way Python's json.dumps
// does with ensure_ascii: ", \ and the short escapes \b \f \n \r \t, any
// other control character and everything beyond ASCII as \uXXXX (UTF-16,
// surrogate pairs above U+FFFF); invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r -= 0x10000
				b = appendU(b, 0xd800+(r>>10))
				r = 0xdc00 + (r & 0x3ff)
			}
			b = appendU(b, r)
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
