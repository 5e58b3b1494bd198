package ledgerd

import (
	"sort"
	"strconv"
	"unicode/utf8"
)

// AppendPostingsJSON appends the postings as the API shows them. Account ids
// and assets are restricted to characters JSON never escapes, so this needs
// no general encoder; the result is stored verbatim and served as is.
func AppendPostingsJSON(b []byte, ps []Posting) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"source":"`...)
		b = append(b, p.Source...)
		b = append(b, `","destination":"`...)
		b = append(b, p.Destination...)
		b = append(b, `","amount":`...)
		b = strconv.AppendInt(b, p.Amount, 10)
		b = append(b, `,"asset":"`...)
		b = append(b, p.Asset...)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// AppendMetadataJSON appends metadata as a JSON object with keys sorted, so
// equal metadata always encodes to equal bytes (idempotency hashes rely on it).
func AppendMetadataJSON(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, k)
		b = append(b, ':')
		b = AppendJSONString(b, m[k])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 is replaced by
// U+FFFD (decoders reject it before it gets here).
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
