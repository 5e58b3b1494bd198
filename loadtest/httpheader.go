package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ledgerd/ledgerd"
)

// header is what readHeader learnt from a status line and header block.
type header struct {
	status   int
	json     bool
	replayed bool
	position ledgerd.Position
	close    bool
	framing  int
	length   int64
	gotByte  bool
}

// readHeader reads a status line and the header block after it.
func readHeader(br *bufio.Reader) (h header, err error) {
	line, err := br.ReadSlice('\n')
	if len(line) > 0 {
		h.gotByte = true
	}
	if err != nil {
		if err == bufio.ErrBufferFull {
			err = errHeaderLimit
		} else if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	status, http10, ok := parseStatusLine(trimEOL(line))
	if !ok {
		return h, fmt.Errorf("%w: status line %q", errMalformed, truncate(line, 64))
	}
	h.status = status
	h.close = http10 // HTTP/1.0 keep-alive is not worth the trouble
	h.length = -1
	var seenCT, seenReplayed, chunked, hasTE bool
	total := len(line)
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil {
			if err == bufio.ErrBufferFull {
				err = errHeaderLimit
			} else if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
		if total > maxHeaderBytes {
			return h, errHeaderLimit
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return h, fmt.Errorf("%w: header line %q", errMalformed, truncate(line, 64))
		}
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseContentLength(value)
			if !ok || h.length >= 0 && n != h.length {
				return h, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(value, 32))
			}
			h.length = n
		case asciiEqualFold(name, "transfer-encoding"):
			hasTE = true
			chunked = lastTokenIs(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if hasToken(value, "close") {
				h.close = true
			}
		case asciiEqualFold(name, "content-type"):
			if !seenCT { // the first value, as Header.Get returns it
				seenCT = true
				h.json = strings.Contains(string(value), "json")
			}
		case asciiEqualFold(name, "consistency-token"):
			// A token this client cannot read is no position: reads
			// after it are then as fresh as the deployment serves them.
			if p, err := ledgerd.ParseToken(string(value)); err == nil {
				h.position = p
			}
		case asciiEqualFold(name, "idempotent-replayed"):
			if !seenReplayed {
				seenReplayed = true
				h.replayed = string(value) == "true"
			}
		}
	}
	if http10 {
		hasTE = false // as net/http: HTTP/1.0 has no transfer codings
	}
	switch {
	case hasTE && chunked:
		h.framing = framingChunked
	case hasTE: // a transfer coding other than chunked last: read until close
		h.framing = framingClose
	case h.length > 0:
		h.framing = framingLength
	case h.length == 0:
		h.framing = framingNone
	default:
		h.framing = framingClose
	}
	return h, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(l []byte) (status int, http10, ok bool) {
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || l[8] != ' ' || len(l) > 12 && l[12] != ' ' {
		return 0, false, false
	}
	switch l[7] {
	case '0':
		http10 = true
	case '1':
	default:
		return 0, false, false
	}
	for _, d := range l[9:12] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		status = status*10 + int(d-'0')
	}
	return status, http10, status >= 100
}

// splitHeader splits "Name: value"; the name must be a token.
func splitHeader(l []byte) (name, value []byte, ok bool) {
	i := 0
	for i < len(l) && isTokenChar(l[i]) {
		i++
	}
	if i == 0 || i == len(l) || l[i] != ':' {
		return nil, nil, false
	}
	return l[:i], bytes.Trim(l[i+1:], " \t"), true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func trimEOL(l []byte) []byte {
	l = l[:len(l)-1] // '\n'
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	return l
}

func truncate(b []byte, n int) []byte { return b[:min(len(b), n)] }

// asciiEqualFold compares b with lower, which is lower case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (any case).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if asciiEqualFold(bytes.Trim(item, " \t"), token) {
			return true
		}
	}
	return false
}

// lastTokenIs reports whether the last element of the list v is token.
func lastTokenIs(v []byte, token string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return asciiEqualFold(bytes.Trim(v, " \t"), token)
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// readBody reads a whole body with the given framing. It appends up to max
// bytes of it to keep and discards the rest; with strict, a body longer
