package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
)

// rawServer accepts connections on loopback and hands each to serve with a
// reader of its requests; it counts the connections.
type rawServer struct {
	url   string
	conns atomic.Int64
}

func newRawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return s
}

// rawRequest is a request as the server read it.
type rawRequest struct {
	line   string
	header http.Header
	body   []byte
}

// readRawRequest reads one request (Content-Length bodies only).
func readRawRequest(br *bufio.Reader) (*rawRequest, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	return &rawRequest{line: req.Method + " " + req.RequestURI + " " + req.Proto, header: req.Header, body: body}, nil
}

// answer serves each request of a connection with the answer fn returns
// for its index (across connections); close ends the connection after it.
func answer(fn func(i int, r *rawRequest) (resp string, close bool)) func(net.Conn, *bufio.Reader) {
	var n atomic.Int64
	return func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			resp, cl := fn(int(n.Add(1)-1), r)
			if _, err := io.WriteString(c, resp); err != nil || cl {
				return
			}
		}
	}
}

func testClient(t *testing.T, url string, timeout time.Duration) *client {
	t.Helper()
	c, err := newClient(url, "secret", timeout, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func TestHTTPClientRequestAndKeepAlive(t *testing.T) {
	var got []*rawRequest
	var mu sync.Mutex
	s := newRawServer(t, answer(func(i int, r *rawRequest) (string, bool) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		return "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 15\r\n\r\n{\"sequence\":42}", false
	}))
	c := testClient(t, s.url+"/base/", time.Second)
	for range 3 {
		var tx struct {
			Sequence int64 `json:"sequence"`
		}
		r := c.do(t.Context(), http.MethodPost, "/v1/x?y=1", []byte(`{"a":1}`), "key-1", decodeJSON(&tx))
		if !r.ok() || r.status != 201 || tx.Sequence != 42 || r.replayed || r.key() != "201" {
			t.Fatalf("result %+v, sequence %d", r, tx.Sequence)
		}
	}
	r := c.do(t.Context(), http.MethodGet, "/v1/z", nil, "", nil)
	if !r.ok() {
		t.Fatalf("GET: %+v", r)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections for 4 sequential requests, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	p := got[0]
	if p.line != "POST /base/v1/x?y=1 HTTP/1.1" || string(p.body) != `{"a":1}` ||
		p.header.Get("Authorization") != "Bearer secret" || p.header.Get("Idempotency-Key") != "key-1" ||
		p.header.Get("Content-Type") != "application/json" || p.header.Get("Accept") != "application/json" {
		t.Errorf("request %q %v %q", p.line, p.header, p.body)
	}
	g := got[3]
	if g.line != "GET /base/v1/z HTTP/1.1" || g.header.Get("Content-Length") != "" || g.header.Get("Idempotency-Key") != "" || len(g.body) != 0 {
		t.Errorf("GET %q %v %q", g.line, g.header, g.body)
	}
}

func TestHTTPClientFramings(t *testing.T) {
	cases := []struct {
		name  string
		resp  string
		close bool // the server closes after it
		body  string
		conns int64 // after two requests
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", false, `{"a":1}`, 1},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nTrailer: x\r\n\r\n", false, `{"a":1}`, 1},
		{"chunked-over-length", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", false, `{"a":1}`, 1},
		{"connection-close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 7\r\n\r\n{\"a\":1}", true, `{"a":1}`, 2},
		{"until-close", "HTTP/1.1 200 OK\r\n\r\n{\"a\":1}", true, `{"a":1}`, 2},
		{"http-1.0", "HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", true, `{"a":1}`, 2},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", false, `{"a":1}`, 1},
		{"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 7\n\n{\"a\":1}", false, `{"a":1}`, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, answer(func(int, *rawRequest) (string, bool) { return tc.resp, tc.close }))
			c := testClient(t, s.url, time.Second)
			for range 2 {
				var v json.RawMessage
				r := c.do(t.Context(), http.MethodGet, "/", nil, "", decodeJSON(&v))
				if !r.ok() || string(v) != tc.body {
					t.Fatalf("result %+v, body %q", r, v)
				}
				// Without a body to decode, the answer is drained.
				if r := c.do(t.Context(), http.MethodGet, "/", nil, "", nil); !r.ok() {
					t.Fatalf("result %+v", r)
				}
			}
			if want := tc.conns * 2; tc.conns == 1 && s.conns.Load() != 1 || tc.conns == 2 && s.conns.Load() != want {
				t.Errorf("%d connections", s.conns.Load())
			}
		})
	}
}

func TestHTTPClientOutcomes(t *testing.T) {
	cases := []struct {
		name     string
		resp     string
		decode   bool
		key      string
		inDoubt  bool
		replayed bool
	}{
		{"problem", "HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/problem+json\r\nContent-Length: 31\r\n\r\n{\"code\":\"insufficient_funds\"}\n\n", false, "422/insufficient_funds", false, false},
		{"problem-not-json", "HTTP/1.1 409 Conflict\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n{\"code\":\"conflict\"}\n", false, "409", false, false},
		{"problem-bad-code", "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"code\":\"a b c\"}", false, "400/invalid_code", false, false},
		{"problem-chunked", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"cod\r\n1c\r\ne\":\"commit_outcome_unknown\"}\r\n0\r\n\r\n", false, "503/commit_outcome_unknown", true, false},
		{"replayed", "HTTP/1.1 201 Created\r\nIdempotent-Replayed: true\r\nContent-Length: 2\r\n\r\n{}", false, "201/unexpected_replay", false, true},
		{"replayed-first-value", "HTTP/1.1 201 Created\r\nidempotent-replayed: false\r\nIdempotent-Replayed: true\r\nContent-Length: 2\r\n\r\n{}", false, "201", false, false},
		{"5xx", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false, "500", true, false},
		{"truncated-body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", true, "200/unreadable_body", true, false},
		{"truncated-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}", true, "200/unreadable_body", true, false},
		{"bad-json", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{]", true, "200/unreadable_body", true, false},
		{"truncated-body-unwanted", "HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n{}", false, "201", false, false},
		{"malformed-status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false, "transport", true, false},
		{"malformed-header", "HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n", false, "transport", true, false},
		{"bad-content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, "transport", true, false},
		{"headers-cut", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false, "transport", true, false},
		{"no-answer", "", false, "transport", true, false},
		{"switching-protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", false, "transport", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, answer(func(int, *rawRequest) (string, bool) { return tc.resp, true }))
			c := testClient(t, s.url, time.Second)
			var decode func([]byte) error
			if tc.decode {
				var v any
				decode = decodeJSON(&v)
			}
			r := c.do(t.Context(), http.MethodPost, "/", emptyObject, "k", decode)
			if r.key() != tc.key || r.inDoubt() != tc.inDoubt || r.replayed != tc.replayed {
				t.Errorf("key %q in doubt %v replayed %v (%+v), want %q %v %v", r.key(), r.inDoubt(), r.replayed, r, tc.key, tc.inDoubt, tc.replayed)
			}
		})
	}
}

func TestHTTPClientTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err == nil {
			<-release
		}
	})
	defer close(release)
	c := testClient(t, s.url, 50*time.Millisecond)
	start := time.Now()
	r := c.do(t.Context(), http.MethodPost, "/", emptyObject, "k", nil)
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v", d)
	}
	if r.key() != "timeout" || !r.inDoubt() || !isTimeout(r.err) {
		t.Errorf("key %q in doubt %v err %v", r.key(), r.inDoubt(), r.err)
	}
}

func TestHTTPClientConnectError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := testClient(t, "http://"+addr, time.Second)
	r := c.do(t.Context(), http.MethodPost, "/", emptyObject, "k", nil)
	if r.key() != "connect" || r.inDoubt() || !strings.Contains(r.err.Error(), `Post "http://`+addr+`/"`) {
		t.Errorf("key %q in doubt %v err %v", r.key(), r.inDoubt(), r.err)
	}
}

// A keep-alive connection the server closed while it was idle is retried on
// a new one when the request may be repeated (as net/http does); a batch,
// which has no Idempotency-Key header, is in doubt instead.
func TestHTTPClientStaleConnection(t *testing.T) {
	closed := make(chan struct{}, 100)
	s := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		c.Close() // without saying so
		closed <- struct{}{}
	})
	for _, tc := range []struct {
		method, key string
		want        string
	}{{"GET", "", "200"}, {"POST", "k", "200"}, {"POST", "", "transport"}} {
		c := testClient(t, s.url, time.Second)
		if r := c.do(t.Context(), http.MethodGet, "/", nil, "", nil); !r.ok() {
			t.Fatalf("first request: %+v", r)
		}
		<-closed
		time.Sleep(20 * time.Millisecond) // the FIN arrives
		r := c.do(t.Context(), tc.method, "/", emptyObject, tc.key, nil)
		if r.key() != tc.want {
			t.Errorf("%s with key %q on a stale connection: %q (%v), want %q", tc.method, tc.key, r.key(), r.err, tc.want)
		}
		if tc.want == "transport" && !r.inDoubt() {
			t.Errorf("a POST without a key that failed on a stale connection is not in doubt")
		}
		for len(closed) > 0 {
			<-closed
		}
	}
}

func TestHTTPClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"proto":"`+r.Proto+`"}`)
	}))
	defer srv.Close()
	c := testClient(t, srv.URL, 5*time.Second)
	c.h.tls.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c.h.tls.ServerName = "example.com" // the test certificate's name
	var v struct{ Proto string }
	if r := c.do(t.Context(), http.MethodGet, "/", nil, "", decodeJSON(&v)); !r.ok() || v.Proto != "HTTP/1.1" {
		t.Fatalf("result %+v, %+v", r, v)
	}
}

func TestHTTPClientBadTarget(t *testing.T) {
	c := testClient(t, "http://127.0.0.1:1", time.Second)
	r := c.do(t.Context(), http.MethodGet, "/a b", nil, "", nil)
	if !errors.Is(r.err, errBadTarget) || r.key() != "transport" {
		t.Errorf("%+v", r)
	}
}

// readResponseFrom runs readResponse on raw bytes.
func readResponseFrom(data []byte, keep2xx bool) (httpResponse, bool, error) {
	c := &hconn{br: bufio.NewReaderSize(bytes.NewReader(data), readBufferSize)}
	resp, closeAfter, _, err := readResponse(c, false, keep2xx)
	return resp, closeAfter, err
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
	"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nIdempotent-Replayed: true\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
	"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/problem+json\r\nContent-Length: 29\r\n\r\n{\"code\":\"insufficient_funds\"}",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, _, err := readResponseFrom(data, true)
		if err != nil {
			return
		}
		if resp.status < 200 || resp.status > 999 {
			t.Fatalf("status %d", resp.status)
		}
		// Where net/http reads the same answer completely, both agree.
		hr, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if herr != nil {
			return
		}
		body, berr := io.ReadAll(hr.Body)
		if berr != nil || hr.StatusCode < 200 {
			return
		}
		if hr.StatusCode != resp.status {
			t.Fatalf("status %d, net/http %d", resp.status, hr.StatusCode)
		}
		if resp.replayed != (hr.Header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("replayed %v, net/http header %q", resp.replayed, hr.Header.Get("Idempotent-Replayed"))
		}
		if resp.json != strings.Contains(hr.Header.Get("Content-Type"), "json") {
			t.Fatalf("json %v, net/http Content-Type %q", resp.json, hr.Header.Get("Content-Type"))
		}
		if is2xx(resp.status) && resp.bodyErr == nil && !bytes.Equal(resp.body, body) {
			t.Fatalf("body %q, net/http %q", resp.body, body)
		}
	})
}

func TestReadResponseLimits(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", readBufferSize) + "\r\n\r\n"
	if _, _, err := readResponseFrom([]byte(long), false); !errors.Is(err, errHeaderLimit) {
		t.Errorf("long header line: %v", err)
	}
	many := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: "+strings.Repeat("a", 1000)+"\r\n", maxHeaderBytes/1000+1) + "\r\n"
	if _, _, err := readResponseFrom([]byte(many), false); !errors.Is(err, errHeaderLimit) {
		t.Errorf("many headers: %v", err)
	}
	big := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(maxDecodedBody+1) + "\r\n\r\n"
	if resp, _, err := readResponseFrom([]byte(big), true); err != nil || !errors.Is(resp.bodyErr, errBodyTooLarge) {
		t.Errorf("body too large: %v %v", err, resp.bodyErr)
	}
}

// Concurrent requests each decode their own answer: a connection's buffer
// is not reused before its answer has been decoded.
func TestHTTPClientConcurrentDecode(t *testing.T) {
	s := newRawServer(t, answer(func(_ int, r *rawRequest) (string, bool) {
		body := `{"id":"` + r.header.Get("Idempotency-Key") + `","pad":"` + strings.Repeat("x", int(r.header.Get("Idempotency-Key")[0])) + `"}`
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body, false
	}))
	c := testClient(t, s.url, 5*time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				key := strconv.Itoa(g*1000 + i)
				var v struct{ ID string }
				r := c.do(t.Context(), http.MethodPost, "/", emptyObject, key, decodeJSON(&v))
				if !r.ok() || v.ID != key {
					t.Errorf("request %s: %+v, decoded id %q", key, r, v.ID)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestHTTPClientConsistencyToken: the client keeps the newest position the
// answers' Consistency-Token headers carried (a stale one does not move
// it back, a malformed one is ignored) and, once told to read
// consistently (the correctness check), sends it with every request.
func TestHTTPClientConsistencyToken(t *testing.T) {
	tokens := []string{ledgerd.Position(7).Token(), ledgerd.Position(9).Token(), ledgerd.Position(8).Token(), "v1.garbage"}
	var got []*rawRequest
	var mu sync.Mutex
	s := newRawServer(t, answer(func(i int, r *rawRequest) (string, bool) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		h := ""
		if i < len(tokens) {
			h = "Consistency-Token: " + tokens[i] + "\r\n"
		}
		return "HTTP/1.1 201 Created\r\n" + h + "Content-Length: 0\r\n\r\n", false
	}))
	c := testClient(t, s.url, time.Second)
	for range tokens {
		if r := c.do(t.Context(), http.MethodPost, "/w", []byte(`{}`), "k", nil); !r.ok() {
			t.Fatalf("write: %+v", r)
		}
	}
	c.consistent.Store(true)
	if r := c.do(t.Context(), http.MethodGet, "/r", nil, "", nil); !r.ok() {
		t.Fatalf("read: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, r := range got[:len(tokens)] {
		if v := r.header.Get("Consistency-Token"); v != "" {
			t.Errorf("write %d sent Consistency-Token %q before the check", i, v)
		}
	}
	if v, want := got[len(tokens)].header.Get("Consistency-Token"), ledgerd.Position(9).Token(); v != want {
		t.Errorf("check read sent Consistency-Token %q, want %q (the newest seen)", v, want)
	}
}
