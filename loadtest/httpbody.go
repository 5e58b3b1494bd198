package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Body framings.
const (
	framingNone   = iota // no body (HEAD, 1xx, 204, 304, or Content-Length: 0)
	framingLength        // Content-Length bytes
	framingChunked
	framingClose // until the server closes the connection
)

// than max is an error.
func readBody(br *bufio.Reader, framing int, length int64, keep []byte, max int, strict bool) ([]byte, error) {
	switch framing {
	case framingNone:
		return keep, nil
	case framingLength:
		return readN(br, length, keep, max, strict)
	case framingClose:
		for {
			step := int64(readBufferSize)
			if strict {
				room := int64(max - len(keep))
				if room == 0 {
					if _, err := br.ReadByte(); err != io.EOF {
						if err == nil {
							err = errBodyTooLarge
						}
						return keep, err
					}
					return keep, nil
				}
				step = min(step, room)
			}
			var err error
			keep, err = readN(br, step, keep, max, strict)
			switch {
			case err == io.ErrUnexpectedEOF:
				return keep, nil
			case err != nil:
				return keep, err
			}
		}
	}
	// chunked
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return keep, chunkErr(err)
		}
		size, ok := parseChunkSize(trimEOL(line))
		if !ok {
			return keep, fmt.Errorf("%w: chunk size %q", errMalformed, truncate(line, 32))
		}
		if size == 0 {
			break
		}
		if keep, err = readN(br, size, keep, max, strict); err != nil {
			return keep, chunkErr(err)
		}
		if err := readCRLF(br); err != nil {
			return keep, err
		}
	}
	for { // trailers, up to the empty line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return keep, chunkErr(err)
		}
		if len(trimEOL(line)) == 0 {
			return keep, nil
		}
	}
}

func chunkErr(err error) error {
	switch err {
	case io.EOF:
		return io.ErrUnexpectedEOF
	case bufio.ErrBufferFull:
		return fmt.Errorf("%w: chunk line too long", errMalformed)
	}
	return err
}

func readCRLF(br *bufio.Reader) error {
	b, err := br.ReadByte()
	if err == nil && b == '\r' {
		b, err = br.ReadByte()
	}
	if err != nil {
		return chunkErr(err)
	}
	if b != '\n' {
		return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
	}
	return nil
}

// parseChunkSize parses "hex[;extensions]".
func parseChunkSize(l []byte) (int64, bool) {
	if i := bytes.IndexByte(l, ';'); i >= 0 {
		l = l[:i]
	}
	l = bytes.Trim(l, " \t")
	if len(l) == 0 || len(l) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range l {
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// readN reads n bytes (fewer if the stream ends: io.ErrUnexpectedEOF),
// appending to keep up to max of them.
func readN(br *bufio.Reader, n int64, keep []byte, max int, strict bool) ([]byte, error) {
	room := int64(max - len(keep))
	if strict && n > room {
		return keep, errBodyTooLarge
	}
	if room > 0 {
		k := min(n, room)
		if cap(keep)-len(keep) < int(k) {
			keep = growKeep(keep, int(k))
		}
		start := len(keep)
		keep = keep[:start+int(k)]
		got, err := io.ReadFull(br, keep[start:])
		keep = keep[:start+got]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return keep, err
		}
		n -= k
	}
	for n > 0 {
		d, err := br.Discard(int(min(n, 1<<30)))
		n -= int64(d)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return keep, err
		}
	}
	return keep, nil
}

// growKeep makes room for k more bytes. A close-delimited body is read in
// steps of readBufferSize; it must not reserve max at once.
func growKeep(b []byte, k int) []byte {
	nb := make([]byte, len(b), max(2*cap(b), len(b)+k))
	copy(nb, b)
	return nb
}
