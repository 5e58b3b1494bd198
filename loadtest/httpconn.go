package loadtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The generator's own HTTP/1.1 client: connections and their pool here,
// one exchange in httpexchange.go, reading a header in httpheader.go and a
// body in httpbody.go. The generator runs on the machine it measures, so
// its CPU is taken from the server under test: net/http's Transport spends
// most of a request in machinery a load generator does not need — a
// context and its timer, a Request and header maps, and two goroutines per
// connection (read and write loops) that the caller hands each request to
// and its answer back from over channels, all of it several goroutine
// wake-ups per request. Here the calling goroutine writes the request with
// one write and reads the answer itself; a connection's deadline bounds the
// whole exchange; nothing is allocated per request on the hot path. It
// speaks just what ledgerd (or any HTTP/1.1 server) needs: keep-alive,
// Content-Length, chunked and close-delimited bodies, Connection: close,
// 1xx interim answers, http and https.

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
