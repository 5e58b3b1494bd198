package httpapi

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// Decoding follows docs/api.md §Validation: the body is first checked
// to be well-formed JSON (400 malformed_json otherwise); after that every
// decoding problem — a wrong type, a number that is not an integer or does
// not fit, a duplicate, unknown or missing member — is a field error of a
// 422 validation_failed, all of them collected in one answer. The decoders
// work on the validated bytes with go-faster/jx, which neither reflects
// nor allocates per member.

// errMalformed is the 400 for a body that is not well-formed JSON.
func errMalformed(detail string) *ledgerd.Error {
	return &ledgerd.Error{Code: ledgerd.CodeMalformedJSON, Detail: detail}
}

// wellFormed checks syntax only: UTF-8 and one complete JSON value.
func wellFormed(body []byte) *ledgerd.Error {
	if !utf8.Valid(body) {
		return errMalformed("the body is not valid UTF-8")
	}
	if !jx.Valid(body) {
		return errMalformed("the body is not well-formed JSON")
	}
	return nil
}

// fields tracks which members of one object were seen, to catch duplicates.
type fields struct {
	seen uint64
}

// first reports whether member bit i is seen for the first time.
func (f *fields) first(i int) bool {
	if f.seen&(1<<i) != 0 {
		return false
	}
	f.seen |= 1 << i
	return true
}

func (f *fields) has(i int) bool { return f.seen&(1<<i) != 0 }

// object iterates the members of an object at path, reporting a non-object
// value, duplicates (by index from member) and unknown members. member
// returns the index of a known member, or -1.
func object(d *jx.Decoder, v *ledgerd.Validation, path string, member func(key string) int, fn func(d *jx.Decoder, i int, field string) error) {
	if d.Next() != jx.Object {
		v.Add(fieldOrBody(path), "must be an object")
		_ = d.Skip()
		return
	}
	var f fields
	_ = d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		k := string(key)
		field := join(path, k)
		i := member(k)
		switch {
		case i < 0:
			v.Add(field, "unknown field")
			return d.Skip()
		case !f.first(i):
			v.Add(field, "duplicate field")
			return d.Skip()
		}
		return fn(d, i, field)
	})
}

// onlyMember decodes a body that is an object of one member, name: read
// gets its value when it is there and not null. It returns whether it
// was, so that the caller can say it is required.
func onlyMember(d *jx.Decoder, v *ledgerd.Validation, name string, read func(d *jx.Decoder, field string) error) (seen bool) {
	object(d, v, "", func(k string) int {
		if k == name {
			return 0
		}
		return -1
	}, func(d *jx.Decoder, _ int, field string) error {
		if isNull(d) {
			return nil
		}
		seen = true
		return read(d, field)
	})
	return seen
}

func fieldOrBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// isNull consumes a null and reports whether the value was null.
func isNull(d *jx.Decoder) bool {
	if d.Next() == jx.Null {
		_ = d.Null()
		return true
	}
	return false
}

// str reads a string. A \u escape of half a UTF-16 surrogate pair has no
// character to stand for: decoders would store U+FFFD in its place, a
// silent change of the client's data, so it is a field error.
func str(d *jx.Decoder, v *ledgerd.Validation, field string) (string, bool) {
	if d.Next() != jx.String {
		v.Add(field, "must be a string")
		_ = d.Skip()
		return "", false
	}
	raw, err := d.Raw()
	if err != nil || len(raw) < 2 {
		v.Add(field, "must be a string")
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true // no escapes: the bytes are the string
	}
	if loneSurrogate(raw) {
		v.Add(field, errLoneSurrogate)
		return "", false
	}
	s, err := jx.DecodeBytes(raw).Str()
	if err != nil {
		v.Add(field, "must be a string")
		return "", false
	}
	return s, true
}

const errLoneSurrogate = "must not contain a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)"

// loneSurrogate reports whether raw JSON holds a \u escape of a surrogate
// that is not a high one followed at once by a low one.
func loneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character; a backslash escape is never a \u
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw, i+1)
		if !ok {
			continue // jx reports the bad escape
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half with no high half before it
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(raw, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func boolean(d *jx.Decoder, v *ledgerd.Validation, field string) (bool, bool) {
	if d.Next() != jx.Bool {
		v.Add(field, "must be a boolean")
		_ = d.Skip()
		return false, false
	}
	b, err := d.Bool()
	return b, err == nil
}

// integer reads a JSON integer in the signed 64-bit range. 1.5, 1e3, 1.0
// and "10" are not integers here: money is never a float or a string.
func integer(d *jx.Decoder, v *ledgerd.Validation, field string) (int64, bool) {
	if d.Next() != jx.Number {
		v.Add(field, "must be an integer")
		_ = d.Skip()
		return 0, false
	}
	n, err := d.Num()
	if err != nil {
		v.Add(field, "must be an integer")
		return 0, false
	}
	for i, c := range n {
		if !(c >= '0' && c <= '9') && !(i == 0 && c == '-') {
			v.Add(field, "must be an integer (no fraction or exponent)")
			return 0, false
		}
	}
	x, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		v.Add(field, "is outside the signed 64-bit range")
		return 0, false
	}
	return x, true
}

// metadata reads a string → string object; with patch, a null value is
// kept as a deletion (nil).
func metadata(d *jx.Decoder, v *ledgerd.Validation, field string) map[string]string {
	if d.Next() != jx.Object {
		v.Add(field, "must be an object of strings")
		_ = d.Skip()
		return nil
	}
	d, lone := metadataObject(d)
	defer jx.PutDecoder(d)
	m := map[string]string{}
	_ = d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		k := string(key)
		f := field + "." + k
		if lone && strings.Contains(k, "\uFFFD") {
			v.Add(f, errLoneSurrogate)
			return d.Skip()
		}
		if _, dup := m[k]; dup {
			v.Add(f, "duplicate field")
			return d.Skip()
		}
		if s, ok := str(d, v, f); ok {
			m[k] = s
		}
		return nil
	})
	return m
}

// metadataObject takes the metadata object ahead in d and returns a decoder
// over it alone (to put back in jx's pool), and whether it holds a lone
// surrogate escape. A key's escapes are gone once jx decodes it, so a key
// holding U+FFFD is refused only when the object's raw text has a lone
// surrogate (a key with a real U+FFFD next to one is named too; the request
// is refused either way).
func metadataObject(d *jx.Decoder) (obj *jx.Decoder, lone bool) {
	obj = jx.GetDecoder()
	raw, err := d.Raw()
	if err != nil {
		raw = []byte("{}") // not reached: the body was checked well-formed
	}
	obj.ResetBytes(raw)
	return obj, bytes.IndexByte(raw, '\\') >= 0 && loneSurrogate(raw)
}

func metadataPatch(d *jx.Decoder, v *ledgerd.Validation, field string) map[string]*string {
	if d.Next() != jx.Object {
		v.Add(field, "must be an object")
		_ = d.Skip()
		return nil
	}
	d, lone := metadataObject(d)
	defer jx.PutDecoder(d)
	m := map[string]*string{}
	_ = d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		k := string(key)
		f := field + "." + k
		if lone && strings.Contains(k, "\uFFFD") {
			v.Add(f, errLoneSurrogate)
			return d.Skip()
		}
		if _, dup := m[k]; dup {
			v.Add(f, "duplicate field")
			return d.Skip()
		}
		if isNull(d) {
			m[k] = nil
			return nil
		}
		if s, ok := str(d, v, f); ok {
			m[k] = &s
		}
		return nil
	})
	return m
}

// Transaction request members.
const (
	txPostings = iota
	txMetadata
	txReference
	txPending
	txPendingTimeout
	txIdempotencyKey // batch items only
)

func txMember(batchItem bool) func(string) int {
	return func(k string) int {
		switch k {
		case "postings":
			return txPostings
		case "metadata":
			return txMetadata
		case "reference":
			return txReference
		case "pending":
			return txPending
		case "pending_timeout_seconds":
			return txPendingTimeout
		case "idempotency_key":
			if batchItem {
				return txIdempotencyKey
			}
		}
		return -1
	}
}

// decodeTransaction decodes a transaction request at path (a batch item when
// key is non-nil) and validates it.
func decodeTransaction(d *jx.Decoder, v *ledgerd.Validation, path string, req *ledgerd.TransactionRequest, key *string) {
	prefix := path
	if prefix != "" {
		prefix += "."
	}
	object(d, v, path, txMember(key != nil), func(d *jx.Decoder, i int, field string) error {
		if isNull(d) {
			return nil // null counts as absent
		}
		switch i {
		case txPostings:
			if d.Next() != jx.Array {
				v.Add(field, "must be an array")
				return d.Skip()
			}
			n := 0
			_ = d.Arr(func(d *jx.Decoder) error {
				if n > ledgerd.MaxPostings { // Validate reports "at most"
					n++
					return d.Skip()
				}
				var p ledgerd.Posting
				decodePosting(d, v, field+"["+strconv.Itoa(n)+"]", &p)
				req.Postings = append(req.Postings, p)
				n++
				return nil
			})
		case txMetadata:
			req.Metadata = metadata(d, v, field)
		case txReference:
			req.Reference, _ = str(d, v, field)
		case txPending:
			req.Pending, _ = boolean(d, v, field)
		case txPendingTimeout:
			req.PendingTimeout, _ = integer(d, v, field)
			if req.PendingTimeout == 0 {
				req.PendingTimeout = -1 // an explicit 0 is out of range, not absent
			}
		case txIdempotencyKey:
			if s, ok := str(d, v, field); ok {
				if !ledgerd.ValidIdempotencyKey(s) {
					v.Add(field, "must be 1 to 255 printable characters")
				}
				*key = s
			}
		}
		return nil
	})
	req.Validate(v, prefix)
}

const (
	pSource = iota
	pDestination
	pAmount
	pAsset
)

func postingMember(k string) int {
	switch k {
	case "source":
		return pSource
	case "destination":
		return pDestination
	case "amount":
		return pAmount
	case "asset":
		return pAsset
	}
	return -1
}

func decodePosting(d *jx.Decoder, v *ledgerd.Validation, path string, p *ledgerd.Posting) {
	var seen fields
	object(d, v, path, postingMember, func(d *jx.Decoder, i int, field string) error {
		if isNull(d) {
			return nil
		}
		seen.first(i)
		switch i {
		case pSource:
			p.Source, _ = str(d, v, field)
		case pDestination:
			p.Destination, _ = str(d, v, field)
		case pAmount:
			var ok bool
			if p.Amount, ok = integer(d, v, field); !ok {
				p.Amount = 1 // reported already; keep Validate from repeating it
			}
		case pAsset:
			p.Asset, _ = str(d, v, field)
		}
		return nil
	})
	if !seen.has(pAmount) {
		v.Add(path+".amount", "is required")
		p.Amount = 1
	}
}
