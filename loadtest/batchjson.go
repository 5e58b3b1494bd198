package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// decodeBatch returns a decode function that fills ans from a batch
// answer, as decodeJSON(ans) would, without encoding/json: the answer to a
// batch of 1,000 carries 1,000 results, each with a whole transaction, of
// which the generator needs only the status and the error code.
// encoding/json's reflection spent more CPU on that than the rest of the
// request. The result is the same for every body — the fuzz test holds it
// to encoding/json — down to the corners: the first JSON value counts and
// what follows is ignored, names match case-insensitively (Unicode simple
// folding), a name that repeats decodes into what the earlier one left,
// null leaves a value alone (and empties a slice or pointer), and a body
// that is not valid JSON, or has a value of the wrong type, is an error.
func decodeBatch(ans *batchAnswer) func([]byte) error {
	return func(b []byte) error { return ans.decode(b) }
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

var (
	errJSONSyntax = errors.New("batch answer: invalid JSON")
	errJSONType   = errors.New("batch answer: JSON value of an unexpected type")
	errJSONDepth  = errors.New("batch answer: JSON nested too deeply")
)

// jsonScan walks one JSON text.
type jsonScan struct {
	b     []byte
	i     int
	depth int
}

func (a *batchAnswer) decode(b []byte) error {
	s := jsonScan{b: b}
	s.ws()
	if s.i == len(b) {
		return io.EOF
	}
	switch b[s.i] {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		if err := s.skip(); err != nil {
			return err
		}
		return errJSONType
	}
	return s.object(func(name []byte, plain bool) error {
		if nameIs(name, plain, "results") {
			return s.results(a)
		}
		return s.skip()
	})
}

// results decodes the "results" array into a.Results like encoding/json
// decodes into an existing slice: element by element into what is there.
func (s *jsonScan) results(a *batchAnswer) error {
	switch s.peek() {
	case 'n':
		a.Results = nil
		return s.literal("null")
	case '[':
	default:
		if err := s.skip(); err != nil {
			return err
		}
		return errJSONType
	}
	if err := s.open(); err != nil {
		return err
	}
	res := a.Results
	n := 0
	s.ws()
	if s.peek() == ']' {
		s.i++
	} else {
		for {
			switch {
			case n < len(res):
			case n < cap(res):
				res = res[:n+1]
			default:
				res = append(res, itemResult{})
			}
			if err := s.item(&res[n]); err != nil {
				return err
			}
			n++
			s.ws()
			c := s.next()
			if c == ']' {
				break
			}
			if c != ',' {
				return errJSONSyntax
			}
			s.ws()
		}
	}
	s.depth--
	if n < len(res) {
		res = res[:n]
	}
	if n == 0 {
		res = make([]itemResult, 0)
	}
	a.Results = res
	return nil
}

// item decodes one result: its status and its error's code.
func (s *jsonScan) item(it *itemResult) error {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		if err := s.skip(); err != nil {
			return err
		}
		return errJSONType
	}
	return s.object(func(name []byte, plain bool) error {
		switch {
		case nameIs(name, plain, "status"):
			return s.int(&it.Status)
		case nameIs(name, plain, "error"):
			return s.itemError(it)
		}
		return s.skip()
	})
}

func (s *jsonScan) itemError(it *itemResult) error {
	switch s.peek() {
	case 'n':
		it.Error = nil
		return s.literal("null")
	case '{':
	default:
		if err := s.skip(); err != nil {
			return err
		}
		return errJSONType
	}
	if it.Error == nil {
		it.Error = new(itemError)
	}
	e := it.Error
	return s.object(func(name []byte, plain bool) error {
		if !nameIs(name, plain, "code") {
			return s.skip()
		}
		switch s.peek() {
		case 'n':
			return s.literal("null")
		case '"':
			raw, plain, err := s.str()
			if err != nil {
				return err
			}
			e.Code = unquote(raw, plain)
			return nil
		}
		if err := s.skip(); err != nil {
			return err
		}
		return errJSONType
	})
}

// int decodes a number into an int as encoding/json does: an integer that
// fits, or null (which leaves it alone).
func (s *jsonScan) int(v *int) error {
	switch c := s.peek(); {
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		start := s.i
		if err := s.number(); err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 0)
		if err != nil {
			return errJSONType // a fraction, an exponent, or out of range
		}
		*v = int(n)
		return nil
	}
	if err := s.skip(); err != nil {
		return err
	}
	return errJSONType
}

// object walks an object whose '{' is next, calling member with each name
// (raw, between the quotes; plain when it has no escapes and is ASCII)
// with the scanner at the member's value.
func (s *jsonScan) object(member func(name []byte, plain bool) error) error {
	if err := s.open(); err != nil {
		return err
	}
	s.ws()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return errJSONSyntax
		}
		name, plain, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.next() != ':' {
			return errJSONSyntax
		}
		s.ws()
		if err := member(name, plain); err != nil {
			return err
		}
		s.ws()
		switch s.next() {
		case ',':
			s.ws()
		case '}':
			s.depth--
			return nil
		default:
			return errJSONSyntax
		}
	}
}

// open consumes '{' or '[' and enters a level.
func (s *jsonScan) open() error {
	s.i++
	s.depth++
	if s.depth > maxJSONDepth {
		return errJSONDepth
	}
	return nil
}

// skip walks over any one value, checking its syntax.
func (s *jsonScan) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte, bool) error { return s.skip() })
	case c == '[':
		if err := s.open(); err != nil {
			return err
		}
		s.ws()
		if s.peek() == ']' {
			s.i++
			s.depth--
			return nil
		}
		for {
			if err := s.skip(); err != nil {
				return err
			}
			s.ws()
			switch s.next() {
			case ',':
				s.ws()
			case ']':
				s.depth--
				return nil
			default:
				return errJSONSyntax
			}
		}
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return errJSONSyntax
}

// strClass sorts the bytes of a string's inside: 0 for the many that need
// no attention, strNonASCII, strEnd ('"'), strEscape ('\\'), strCtl
// (control characters, invalid in JSON).
var strClass = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = strCtl
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = strNonASCII
	}
	t['"'], t['\\'] = strEnd, strEscape
	return t
}()

const (
	strNonASCII = 1 + iota
	strEnd
	strEscape
	strCtl
)

// str consumes a string whose '"' is next and returns what is between the
// quotes; plain reports no escapes and only ASCII.
func (s *jsonScan) str() (raw []byte, plain bool, err error) {
	s.i++
	start := s.i
	plain = true
	b := s.b
	for {
		i := s.i
		for i < len(b) && strClass[b[i]] == 0 {
			i++
		}
		s.i = i
		if i == len(b) {
			return nil, false, io.ErrUnexpectedEOF
		}
		switch strClass[b[i]] {
		case strEnd:
			s.i++
			return b[start:i], plain, nil
		case strNonASCII:
			plain = false
			s.i++
		case strCtl:
			return nil, false, errJSONSyntax
		case strEscape:
			plain = false
			s.i++
			if s.i == len(b) {
				return nil, false, io.ErrUnexpectedEOF
			}
			switch b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i == len(b) {
						return nil, false, io.ErrUnexpectedEOF
					}
					if !isHex(b[s.i]) {
						return nil, false, errJSONSyntax
					}
					s.i++
				}
			default:
				return nil, false, errJSONSyntax
			}
		}
	}
}

// number consumes a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return s.syntaxOrEOF()
	}
	if s.peek() == '.' {
		s.i++
		if !isDigit(s.peek()) {
			return s.syntaxOrEOF()
		}
		s.digits()
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !isDigit(s.peek()) {
			return s.syntaxOrEOF()
		}
		s.digits()
	}
	return nil
}

func (s *jsonScan) digits() {
	for isDigit(s.peek()) {
		s.i++
	}
}

func (s *jsonScan) literal(word string) error {
	for k := range len(word) {
		if s.i == len(s.b) {
			return io.ErrUnexpectedEOF
		}
		if s.b[s.i] != word[k] {
			return errJSONSyntax
		}
		s.i++
	}
	return nil
}

func (s *jsonScan) syntaxOrEOF() error {
	if s.i == len(s.b) {
		return io.ErrUnexpectedEOF
	}
	return errJSONSyntax
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end.
func (s *jsonScan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// next consumes and returns the next byte, or 0 at the end.
func (s *jsonScan) next() byte {
	c := s.peek()
	s.i++
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// nameIs matches a member name against a field name (lower-case ASCII) as
// encoding/json does: case-insensitively, after unescaping, with Unicode
// simple folding (so "ſtatus" is "status").
func nameIs(raw []byte, plain bool, field string) bool {
	if plain {
		return asciiEqualFold(raw, field)
	}
	return bytes.EqualFold([]byte(unquote(raw, false)), []byte(field))
}

// unquote returns the string a JSON string literal's inside stands for;
// escapes and invalid UTF-8 go through encoding/json.
func unquote(raw []byte, plain bool) string {
	if plain {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if json.Unmarshal(q, &v) != nil {
		return "" // cannot happen: str checked the syntax
	}
	return v
}
