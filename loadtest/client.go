package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd"
)

// client talks to one ledgerd deployment over keep-alive HTTP/1.1
// connections (httpconn.go), so that the generator measures the server, not
// TCP handshakes: up to concurrency connections stay idle between requests,
// every body is read to the end so that its connection can be reused, and
// each request in flight has its own connection, as most load balancers
// would see it.
type client struct {
	base    string
	key     string
	timeout time.Duration
	h       *httpClient
	// latest is the newest Consistency-Token position the answers have
	// carried; with consistent set, every request sends it back, so that
	// the correctness check reads data at least as new as every write the
	// run made, whichever node and replica serve it.
	latest     atomic.Uint64
	consistent atomic.Bool
}

func newClient(baseURL, key string, timeout time.Duration, concurrency int) (*client, error) {
	h, err := newHTTPClient(baseURL, concurrency+16)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", baseURL, err)
	}
	return &client{base: baseURL, key: key, timeout: timeout, h: h}, nil
}

// close releases the idle connections.
func (c *client) close() { c.h.closeIdle() }

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
// (docs/api.md §Write path: 503 may mean "commit outcome unknown"), or a 2xx whose body we
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
// Idempotency-Key header. decode, when set, decodes a 2xx body; the rest of
// every body is drained so the connection is reused. The request is not
// cancelled with ctx: a run that stops lets its in-flight requests finish
// (bounded by the per-request timeout) so that their outcome is known.
func (c *client) do(_ context.Context, method, path string, body []byte, idemKey string, decode func([]byte) error) result {
	req := httpRequest{method: method, path: path, auth: c.key, idemKey: idemKey, body: body}
	if c.consistent.Load() {
		if p := ledgerd.Position(c.latest.Load()); p != 0 {
			req.token = p.Token()
		}
	}
	resp, err := c.h.roundTrip(&req, time.Now().Add(c.timeout), decode)
	if err != nil {
		op := method[:1] + strings.ToLower(method[1:]) // "Post", as net/http names it
		return result{err: &url.Error{Op: op, URL: c.base + path, Err: err}}
	}
	for p := uint64(resp.position); p != 0; {
		old := c.latest.Load()
		if p <= old || c.latest.CompareAndSwap(old, p) {
			break
		}
	}
	r := result{status: resp.status, replayed: resp.replayed, code: resp.code}
	if is2xx(r.status) && decode != nil {
		r.err = resp.bodyErr
	}
	return r
}

// problemCode reads the machine-readable code of an RFC 9457 problem body
// (its first MiB); "" when the body is not one.
func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&p) != nil {
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

// decodeJSON returns a decode function that fills v from the first JSON
// value of a body (what follows it is ignored, as json.Decoder does).
func decodeJSON(v any) func([]byte) error {
	return func(b []byte) error { return json.NewDecoder(bytes.NewReader(b)).Decode(v) }
}

// itemResult is one element of a batch answer; only what is counted.
type itemResult struct {
	Status int        `json:"status"`
	Error  *itemError `json:"error"`
}

type itemError struct {
	Code string `json:"code"`
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
