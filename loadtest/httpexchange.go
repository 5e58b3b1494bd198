package loadtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd"
)

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
