package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// client talks to one ledgerd deployment. It shares a single keep-alive
// transport across all workers so that the generator measures the server,
// not TCP handshakes: the idle pool is as large as the number of concurrent
// requests, every body is read to the end so that its connection returns to
// the pool, and HTTP/2 is off so that each request has its own connection as
// most load balancers would see it.
type client struct {
	base    string
	key     string
	timeout time.Duration
	http    *http.Client
}

func newClient(baseURL, key string, timeout time.Duration, concurrency int) *client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // load goes straight to the deployment, not through a proxy from the environment
		DialContext:           dialer.DialContext,
		MaxIdleConns:          concurrency + 16,
		MaxIdleConnsPerHost:   concurrency + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return &client{base: baseURL, key: key, timeout: timeout, http: &http.Client{Transport: tr}}
}

// close releases the idle connections.
func (c *client) close() { c.http.CloseIdleConnections() }

// result is what one request produced, reduced to what the statistics and
// the in-doubt bookkeeping need.
type result struct {
	status   int    // 0 when no response arrived
	code     string // problem code of an error response, if any
	replayed bool   // Idempotent-Replayed: true
	err      error  // transport failure, or (with status != 0) a body that could not be read or decoded
}

// ok reports a 2xx whose body, if it was wanted, was read.
func (r result) ok() bool { return r.status >= 200 && r.status < 300 && r.err == nil }

// inDoubt reports whether the request may have been applied without the
// client learning it: no response (other than a refused connection), a 5xx
// (SPEC: 503 may mean "commit outcome unknown"), or a 2xx whose body we
// needed but could not read. Such requests are repeated after the run with
// the same Idempotency-Key so that the correctness check can count exactly.
func (r result) inDoubt() bool {
	switch {
	case r.status == 0:
		return !isDialError(r.err)
	case r.status >= 500:
		return true
	case r.status >= 200 && r.status < 300:
		return r.err != nil
	}
	return false
}

// key names the outcome for the error and rejection tables:
// "status/problem-code", or the kind of transport failure.
func (r result) key() string {
	if r.status == 0 {
		switch {
		case isTimeout(r.err):
			return "timeout"
		case isDialError(r.err):
			return "connect"
		default:
			return "transport"
		}
	}
	s := strconv.Itoa(r.status)
	switch {
	case r.status >= 200 && r.status < 300 && r.err != nil:
		return s + "/unreadable_body"
	case r.replayed && r.status < 300:
		return s + "/unexpected_replay"
	case r.code != "":
		return s + "/" + r.code
	}
	return s
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isDialError reports a connection that could not be opened: the request
// was never sent, so it cannot have been applied.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// do sends one request. body may be nil; idemKey, when set, goes into the
// Idempotency-Key header. decode, when set, reads a 2xx body; the rest of
// every body is drained so the connection is reused. The request is not
// cancelled with ctx: a run that stops lets its in-flight requests finish
// (bounded by the per-request timeout) so that their outcome is known.
func (c *client) do(ctx context.Context, method, path string, body []byte, idemKey string, decode func(io.Reader) error) result {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return result{err: err}
	}
	if c.key != "" { // --workload get may run without a key
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	switch {
	case r.status >= 200 && r.status < 300:
		if decode != nil {
			r.err = decode(resp.Body)
		}
	default:
		r.code = problemCode(resp)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && r.err == nil && decode != nil {
		r.err = err
	}
	return r
}

// problemCode reads the machine-readable code of an RFC 9457 problem body;
// "" when the body is not one.
func problemCode(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if !strings.Contains(ct, "json") {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p) != nil {
		return ""
	}
	return sanitizeCode(p.Code)
}

// sanitizeCode keeps codes usable as table keys: a misbehaving server must
// not blow up the report with arbitrary text.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch == '_' || ch == '-' || ch == '.' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			return "invalid_code"
		}
	}
	return s
}

// Body problems of a 2xx, reported as "<status>/unreadable_body".
var (
	errBadBatch = errors.New("batch answer does not have one result per item")
	errNoID     = errors.New("transaction answer without an id")
)

// decodeJSON returns a decode function that fills v.
func decodeJSON(v any) func(io.Reader) error {
	return func(r io.Reader) error { return json.NewDecoder(r).Decode(v) }
}

// itemResult is one element of a batch answer; only what is counted.
type itemResult struct {
	Status int `json:"status"`
	Error  *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// key names an item's outcome like result.key does for a request.
func (it itemResult) key() string {
	s := strconv.Itoa(it.Status)
	if it.Error != nil && it.Error.Code != "" {
		return s + "/" + sanitizeCode(it.Error.Code)
	}
	return s
}

// batchAnswer is the body of a 200 from either batch endpoint.
type batchAnswer struct {
	Results []itemResult `json:"results"`
}
