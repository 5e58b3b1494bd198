package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
)

// This file is the generator's own HTTP/1.1 client. The generator runs on
// the machine it measures, so its CPU is taken from the server under test:
// net/http's Transport spends most of a request in machinery a load
// generator does not need — a context and its timer, a Request and header
// maps, and two goroutines per connection (read and write loops) that the
// caller hands each request to and its answer back from over channels, all
// of it several goroutine wake-ups per request. Here the calling goroutine
// writes the request with one write and reads the answer itself; a
// connection's deadline bounds the whole exchange; nothing is allocated
// per request on the hot path. It speaks just what ledgerd (or any HTTP/1.1
// server) needs: keep-alive, Content-Length, chunked and close-delimited
// bodies, Connection: close, 1xx interim answers, http and https.

// Limits on what a server may send.
const (
	maxStatusLine   = 4 << 10  // also the longest header line (the read buffer's size)
	maxHeaderBytes  = 1 << 20  // all header lines of one response
	maxDecodedBody  = 64 << 20 // a 2xx body the generator decodes
	maxProblemBody  = 1 << 20  // an error body read for its problem code
	readBufferSize  = 16 << 10 // per connection
	dialTimeout     = 5 * time.Second
	tlsHandshakeMax = 10 * time.Second
	userAgent       = "ledgerd-loadtest"
)

// Response problems; they count as transport failures (status 0).
var (
	errMalformed    = errors.New("malformed HTTP response")
	errHeaderLimit  = errors.New("HTTP response headers too large")
	errBodyTooLarge = errors.New("HTTP response body too large")
	errBadTarget    = errors.New("invalid request target")
)

// httpClient holds keep-alive connections to one server.
type httpClient struct {
	addr    string      // host:port to dial
	host    string      // Host header
	prefix  string      // path of the base URL, prepended to every request's
	tls     *tls.Config // nil for http
	maxIdle int
	dialer  net.Dialer

	mu     sync.Mutex
	idle   []*hconn // LIFO: the most recently used connection is the warmest
	closed bool
}

// hconn is one connection; it is used by one request at a time.
type hconn struct {
	nc     net.Conn
	br     *bufio.Reader
	wbuf   []byte // the request being written
	body   []byte // the body of the answer being read, when kept
	reused bool   // served a request before the current one
}

func newHTTPClient(base string, maxIdle int) (*httpClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	h := &httpClient{host: u.Host, prefix: strings.TrimRight(u.EscapedPath(), "/"), maxIdle: maxIdle,
		dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		h.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host in URL")
	}
	h.addr = net.JoinHostPort(u.Hostname(), port)
	return h, nil
}

// closeIdle closes the idle connections; connections in use are closed
// when they are returned.
func (h *httpClient) closeIdle() {
	h.mu.Lock()
	idle := h.idle
	h.idle, h.closed = nil, true
	h.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

func (h *httpClient) get() *hconn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.idle); n > 0 {
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		return c
	}
	return nil
}

func (h *httpClient) put(c *hconn) {
	c.reused = true
	h.mu.Lock()
	if !h.closed && len(h.idle) < h.maxIdle {
		h.idle = append(h.idle, c)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	c.nc.Close()
}

func (h *httpClient) dial(deadline time.Time) (*hconn, error) {
	ctx, cancel := context.WithDeadline(context.Background(), earliest(deadline, time.Now().Add(dialTimeout)))
	defer cancel()
	nc, err := h.dialer.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	if h.tls != nil {
		tc := tls.Client(nc, h.tls)
		hctx, hcancel := context.WithDeadline(context.Background(), earliest(deadline, time.Now().Add(tlsHandshakeMax)))
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &hconn{nc: nc, br: bufio.NewReaderSize(nc, readBufferSize)}, nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// httpRequest is what the generator sends; header values come from the
// generator itself (validated key, generated idempotency keys).
type httpRequest struct {
	method  string
	path    string // absolute path with any query, appended to the base URL's path
	auth    string // bearer token, "" for none
	idemKey string // Idempotency-Key, "" for none
	token   string // Consistency-Token, "" for none
	body    []byte // JSON, nil for none
}

// replayable is net/http's rule for retrying a request that failed on a
// reused connection before any answer: safe methods, or an Idempotency-Key.
func (r *httpRequest) replayable() bool {
	switch r.method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return r.idemKey != ""
}

// httpResponse is what the generator reads from an answer.
type httpResponse struct {
	status   int
	json     bool             // Content-Type mentions json
	replayed bool             // Idempotent-Replayed: true
	position ledgerd.Position // of a Consistency-Token header, 0 for none
	code     string           // the problem code of a json error body
	kept     bool             // body holds the answer's body (or its first maxProblemBody bytes)
	body     []byte           // a 2xx body when asked for, or a json error body; valid while the connection is not reused
	bodyErr  error            // a 2xx body asked for could not be read completely, or decoded
}

// roundTrip sends req and reads its answer before deadline. An error means
// no usable answer (status 0). decode, when set, decodes a 2xx body; its
// failure, or one to read that body, is reported in resp.bodyErr instead,
// with the status. The problem code of a json error body is in resp.code.
func (h *httpClient) roundTrip(req *httpRequest, deadline time.Time, decode func([]byte) error) (httpResponse, error) {
	for i := range len(req.path) {
		if c := req.path[i]; c <= ' ' || c == 0x7f {
			return httpResponse{}, errBadTarget
		}
	}
	path := req.path
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i] // a fragment is not sent
	}
	for {
		c := h.get()
		if c == nil {
			var err error
			if c, err = h.dial(deadline); err != nil {
				return httpResponse{}, err
			}
		}
		resp, retry, err := h.exchange(c, req, path, deadline, decode)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		if !retry || !time.Now().Before(deadline) {
			return httpResponse{}, err
		}
		// A reused connection the server had closed: try another one, as
		// net/http does (a fresh connection is never retried).
	}
}

// exchange runs one request on c and returns c to the pool when it can be
// reused. On error the caller closes c; retry reports that the request
// certainly did not reach the server's handler on a connection the server
// had already given up (or is safe to repeat), so it may be sent again.
func (h *httpClient) exchange(c *hconn, req *httpRequest, path string, deadline time.Time, decode func([]byte) error) (resp httpResponse, retry bool, err error) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return resp, false, err
	}
	c.wbuf = appendRequest(c.wbuf[:0], h, req, path)
	n, werr := c.nc.Write(c.wbuf)
	if werr != nil && n == 0 {
		return resp, c.reused && !isTimeout(werr), werr
	}
	// Even when the write failed, the server may have answered (an error
	// before reading the whole body, say): read what it sent.
	var closeAfter, gotByte bool
	resp, closeAfter, gotByte, err = readResponse(c, req.method == "HEAD", decode != nil)
	if err != nil {
		if werr != nil {
			err = werr
		}
		retry = c.reused && !gotByte && !isTimeout(err) && req.replayable()
		return resp, retry, err
	}
	reusable := werr == nil && !closeAfter && resp.bodyErr == nil
	if resp.kept { // the body lives in c's buffer: use it before c is reused
		if is2xx(resp.status) {
			resp.bodyErr = decode(resp.body)
		} else {
			resp.code = problemCode(resp.body)
		}
		resp.body = nil
	}
	if reusable {
		h.put(c)
	} else {
		c.nc.Close()
	}
	return resp, false, nil
}

// appendRequest appends req's request line, headers and body.
func appendRequest(b []byte, h *httpClient, req *httpRequest, path string) []byte {
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, h.prefix...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\nUser-Agent: "+userAgent+"\r\nAccept: application/json\r\n"...)
	if req.auth != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, req.auth...)
		b = append(b, "\r\n"...)
	}
	if req.idemKey != "" {
		b = append(b, "Idempotency-Key: "...)
		b = append(b, req.idemKey...)
		b = append(b, "\r\n"...)
	}
	if req.token != "" {
		b = append(b, "Consistency-Token: "...)
		b = append(b, req.token...)
		b = append(b, "\r\n"...)
	}
	if req.body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	} else if req.method != "GET" && req.method != "HEAD" {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.body...)
}

// Body framings.
const (
	framingNone   = iota // no body (HEAD, 1xx, 204, 304, or Content-Length: 0)
	framingLength        // Content-Length bytes
	framingChunked
	framingClose // until the server closes the connection
)

// readResponse reads one answer (skipping 1xx interim ones) from c.
// closeAfter reports that the connection cannot carry another request;
// gotByte that any byte of an answer arrived.
func readResponse(c *hconn, head, keep2xx bool) (resp httpResponse, closeAfter, gotByte bool, err error) {
	br := c.br
	for {
		h, err := readHeader(br)
		if h.gotByte {
			gotByte = true
		}
		if err != nil {
			return resp, true, gotByte, err
		}
		if h.status >= 100 && h.status < 200 {
			if h.status == 101 {
				return resp, true, true, fmt.Errorf("%w: unexpected 101 Switching Protocols", errMalformed)
			}
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		resp = httpResponse{status: h.status, json: h.json, replayed: h.replayed, position: h.position}
		framing := h.framing
		if head || h.status == 204 || h.status == 304 {
			framing = framingNone
		}
		closeAfter = h.close || framing == framingClose
		switch {
		case keep2xx && h.status >= 200 && h.status < 300:
			c.body, err = readBody(br, framing, h.length, c.body[:0], maxDecodedBody, true)
			if err != nil {
				// The status stands; the body is unreadable (and the
				// connection unusable).
				resp.bodyErr = err
				return resp, true, true, nil
			}
			resp.body, resp.kept = c.body, true
		case h.json && (h.status < 200 || h.status >= 300):
			c.body, err = readBody(br, framing, h.length, c.body[:0], maxProblemBody, false)
			// What arrived may still hold the code, as it did for a
			// json.Decoder reading the body as it came.
			resp.body, resp.kept = c.body, true
			if err != nil {
				return resp, true, true, nil // see below
			}
		default:
			if _, err = readBody(br, framing, h.length, nil, 0, false); err != nil {
				// Once the status line and headers arrived, a body that
				// could not be drained does not make the answer unusable
				// (net/http's caller, too, only learnt of it by reading
				// the body, and the generator ignored it there); only the
				// connection is lost.
				return resp, true, true, nil
			}
		}
		return resp, closeAfter, true, nil
	}
}

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
