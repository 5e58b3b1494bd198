package webhook

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
)

// receiver is a real HTTP server on loopback that records what it got and
// checks every request as a Standard Webhooks receiver would.
type receiver struct {
	*httptest.Server
	secret string

	mu   sync.Mutex
	got  []received
	bad  []string // why a request failed the receiver's checks
	code int      // status to answer; 0 = 204
}

type received struct {
	id, ts string
	body   []byte
	header http.Header
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, received{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), body, req.Header.Clone()})
		switch {
		case req.Method != http.MethodPost:
			r.bad = append(r.bad, "method "+req.Method)
		case req.Header.Get("Content-Type") != "application/json":
			r.bad = append(r.bad, "content type "+req.Header.Get("Content-Type"))
		case !standardVerify(r.secret, req.Header, body):
			r.bad = append(r.bad, "signature")
		}
		if ts, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Second {
			r.bad = append(r.bad, "timestamp "+req.Header.Get("webhook-timestamp"))
		}
		if r.code == 0 {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(r.code)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() ([]received, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...), append([]string(nil), r.bad...)
}

func testEvent() *ledgerd.Event {
	return &ledgerd.Event{
		ID: ledgerd.TransactionEventID("0190f0a0-0000-7000-8000-000000000001"), Type: ledgerd.EventTransactionPosted,
		Ledger: "demo", CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC),
		Data: []byte(`{"id":"0190f0a0-0000-7000-8000-000000000001","sequence":7,"status":"posted","postings":[{"source":"world:USD","destination":"users:alice","amount":1500,"asset":"USD"}],"metadata":{},"created_at":"2026-11-22T10:00:00.123456Z"}`),
	}
}

func endpoint(t *testing.T, url string, secrets ...string) Endpoint {
	ks, err := ParseKeys(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return Endpoint{URL: url, Keys: ks}
}

// loopbackClient may reach the test receivers on 127.0.0.1.
func loopbackClient(timeout time.Duration) *http.Client {
	return NewClient(ClientOptions{AllowPrivate: true, Timeout: timeout})
}

func TestDeliverSignedAndVerified(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	rcv := newReceiver(t, secret)
	ev := testEvent()
	c := loopbackClient(0)

	for range 2 {
		out := Deliver(t.Context(), c, endpoint(t, rcv.URL+"/hook?token=abc", secret), ev)
		if out.Result != Delivered || out.StatusCode != 204 || out.Err != "" {
			t.Fatalf("outcome %+v", out)
		}
	}
	got, bad := rcv.requests()
	if len(bad) > 0 || len(got) != 2 {
		t.Fatalf("receiver got %d requests, rejected: %v", len(got), bad)
	}
	// Every attempt carries the same id and body (a receiver de-duplicates
	// by webhook-id), and each passes the package's own Verify too.
	for _, r := range got {
		if r.id != ev.ID || string(r.body) != string(got[0].body) {
			t.Fatalf("attempts differ: %q %q", r.id, r.body)
		}
		if err := Verify([]string{secret}, r.header, r.body, DefaultTolerance); err != nil {
			t.Fatal(err)
		}
	}
	var body struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(strings.NewReader(string(got[0].body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Type != "transaction.posted" || body.Timestamp != "2026-11-22T10:00:00.123456Z" || string(body.Data) != string(ev.Data) {
		t.Fatalf("body %s", got[0].body)
	}
}

func TestDeliverDuringRotation(t *testing.T) {
	t.Parallel()
	oldS, newS := NewSecret(), NewSecret()
	withOld, withNew := newReceiver(t, oldS), newReceiver(t, newS)
	c := loopbackClient(0)
	for _, rcv := range []*receiver{withOld, withNew} {
		if out := Deliver(t.Context(), c, endpoint(t, rcv.URL, newS, oldS), testEvent()); out.Result != Delivered {
			t.Fatalf("outcome %+v", out)
		}
		got, bad := rcv.requests()
		if len(got) != 1 || len(bad) > 0 {
			t.Fatalf("receiver with one of the secrets: %d requests, rejected %v", len(got), bad)
		}
		if n := len(strings.Fields(got[0].header.Get("webhook-signature"))); n != 2 {
			t.Fatalf("%d signatures during a rotation", n)
		}
	}
	// After the rotation window only the new secret signs.
	if out := Deliver(t.Context(), c, endpoint(t, withOld.URL, newS), testEvent()); out.Result != Delivered {
		t.Fatalf("outcome %+v", out)
	}
	if _, bad := withOld.requests(); len(bad) != 1 || bad[0] != "signature" {
		t.Fatalf("old-secret receiver accepted a request signed only with the new secret: %v", bad)
	}
}

func TestDeliverStatuses(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	cases := []struct {
		code   int
		result Result
		err    string
	}{
		{200, Delivered, ""},
		{201, Delivered, ""},
		{202, Delivered, ""},
		{299, Delivered, ""},
		{410, Gone, "410 Gone"},
		{400, Retry, "HTTP 400"},
		{404, Retry, "HTTP 404"},
		{429, Retry, "HTTP 429"},
		{500, Retry, "HTTP 500"},
		{503, Retry, "HTTP 503"},
	}
	c := loopbackClient(0)
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, secret)
			rcv.code = tc.code
			out := Deliver(t.Context(), c, endpoint(t, rcv.URL, secret), testEvent())
			if out.Result != tc.result || out.StatusCode != tc.code || !strings.Contains(out.Err, tc.err) || (tc.err == "") != (out.Err == "") {
				t.Fatalf("outcome %+v, want %v %q", out, tc.result, tc.err)
			}
			if got, bad := rcv.requests(); len(got) != 1 || len(bad) > 0 {
				t.Fatalf("%d requests, rejected %v", len(got), bad)
			}
		})
	}
}

func TestDeliverRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	target := newReceiver(t, secret)
	for _, code := range []int{301, 302, 307, 308} {
		redir := httptest.NewServer(http.RedirectHandler(target.URL, code))
		out := Deliver(t.Context(), loopbackClient(0), endpoint(t, redir.URL, secret), testEvent())
		redir.Close()
		if out.Result != Retry || out.StatusCode != code || !strings.Contains(out.Err, "redirect not followed") {
			t.Fatalf("%d: outcome %+v", code, out)
		}
	}
	if got, _ := target.requests(); len(got) != 0 {
		t.Fatalf("redirect target reached %d times", len(got))
	}
}

// hanging answers nothing until the test ends.
func hanging(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

func TestDeliverTimeout(t *testing.T) {
	t.Parallel()
	s := hanging(t)
	start := time.Now()
	out := Deliver(t.Context(), loopbackClient(300*time.Millisecond), endpoint(t, s.URL, NewSecret()), testEvent())
	if out.Result != Retry || out.StatusCode != 0 || out.Err != "timeout" {
		t.Fatalf("outcome %+v", out)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 3*time.Second || out.Duration < 300*time.Millisecond {
		t.Fatalf("returned after %v (Duration %v) with a 300ms timeout", el, out.Duration)
	}
}

// TestHangingEndpointDelaysNoOther: deliveries share one client; one stuck
// on a hanging receiver does not hold up another endpoint.
func TestHangingEndpointDelaysNoOther(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	s, ok := hanging(t), newReceiver(t, secret)
	c := loopbackClient(5 * time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan Outcome, 4)
	stuck := endpoint(t, s.URL, secret)
	for range 4 {
		go func() { done <- Deliver(ctx, c, stuck, testEvent()) }()
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if out := Deliver(t.Context(), c, endpoint(t, ok.URL, secret), testEvent()); out.Result != Delivered {
		t.Fatalf("outcome %+v", out)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("good endpoint took %v beside a hanging one", el)
	}
	select {
	case out := <-done:
		t.Fatalf("hanging delivery returned early: %+v", out)
	default:
	}
	cancel()
	for range 4 {
		if out := <-done; out.Result != Retry || out.Err != "canceled" {
			t.Fatalf("canceled delivery: %+v", out)
		}
	}
}

// rawServer answers every connection with handle, below HTTP.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

func TestDeliverGarbage(t *testing.T) {
	t.Parallel()
	readRequest := func(c net.Conn) {
		br := bufio.NewReader(c)
		if req, err := http.ReadRequest(br); err == nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
	}
	cases := []struct {
		name   string
		handle func(net.Conn)
		result Result
		err    string
	}{
		{"not_http", func(c net.Conn) { readRequest(c); io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n") }, Retry, "malformed HTTP response"},
		{"closed_without_answer", func(c net.Conn) { readRequest(c) }, Retry, "connection closed before a response"},
		{"bad_status_line", func(c net.Conn) { readRequest(c); io.WriteString(c, "HTTP/1.1 abc OK\r\n\r\n") }, Retry, "malformed HTTP"},
		{"huge_headers", func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")
		}, Retry, "header"},
		// A 2xx is a 2xx whatever the body: it is read up to a bound and dropped.
		{"ok_with_garbage_body", func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n\x00\xff<html>")
		}, Delivered, ""},
		{"ok_with_endless_body", func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			chunk := "10000\r\n" + strings.Repeat("x", 0x10000) + "\r\n"
			for {
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		}, Delivered, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := rawServer(t, tc.handle)
			start := time.Now()
			out := Deliver(t.Context(), loopbackClient(5*time.Second), endpoint(t, url+"?token=s3cr3t", NewSecret()), testEvent())
			if out.Result != tc.result || !strings.Contains(out.Err, tc.err) || (tc.err == "") != (out.Err == "") {
				t.Fatalf("outcome %+v, want %v %q", out, tc.result, tc.err)
			}
			if strings.Contains(out.Err, "s3cr3t") || strings.Contains(out.Err, "127.0.0.1") {
				t.Fatalf("error %q repeats the URL", out.Err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("took %v", el)
			}
		})
	}
}

func TestDeliverRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/?token=s3cr3t"
	ln.Close()
	out := Deliver(t.Context(), loopbackClient(0), endpoint(t, url, NewSecret()), testEvent())
	if out.Result != Retry || out.StatusCode != 0 || out.Err != "connection refused" {
		t.Fatalf("outcome %+v", out)
	}
}

// TestDeliverBlockedAtDial: without allowPrivate, the client refuses to
// connect to loopback whether the URL names it as an address or as a name
// that resolves to it (as a rebinding DNS name would after passing the
// registration check); the receiver is never reached. The same receiver
// is reachable with allowPrivate.
func TestDeliverBlockedAtDial(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	rcv := newReceiver(t, secret)
	_, port, _ := net.SplitHostPort(rcv.Listener.Addr().String())
	guarded := NewClient(ClientOptions{})
	for _, url := range []string{
		rcv.URL,
		"http://localhost:" + port + "/hook",
		"http://[::ffff:127.0.0.1]:" + port + "/hook",
	} {
		out := Deliver(t.Context(), guarded, endpoint(t, url, secret), testEvent())
		if out.Result != Retry || out.StatusCode != 0 || !strings.HasPrefix(out.Err, "blocked: ") || !strings.Contains(out.Err, "is not a public address") {
			t.Fatalf("%s: outcome %+v", url, out)
		}
	}
	if got, _ := rcv.requests(); len(got) != 0 {
		t.Fatalf("blocked receiver reached %d times", len(got))
	}
	out := Deliver(t.Context(), loopbackClient(0), endpoint(t, "http://localhost:"+port+"/hook", secret), testEvent())
	if out.Result != Delivered {
		t.Fatalf("with allowPrivate: %+v", out)
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	t.Parallel()
	tr := NewClient(ClientOptions{}).Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("delivery client consults a proxy")
	}
}

func TestDeliverInvalidInput(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	rcv := newReceiver(t, secret)
	ev := testEvent()
	ev.Data = []byte(`{"id":`)
	if out := Deliver(t.Context(), loopbackClient(0), endpoint(t, rcv.URL, secret), ev); out.Result != Retry || out.Err != "invalid event data" {
		t.Fatalf("outcome %+v", out)
	}
	if out := Deliver(t.Context(), loopbackClient(0), endpoint(t, "http://[::1", secret), testEvent()); out.Result != Retry || out.Err != "invalid endpoint URL" {
		t.Fatalf("outcome %+v", out)
	}
	if out := Deliver(t.Context(), loopbackClient(0), Endpoint{URL: rcv.URL}, testEvent()); out.Result != Retry || out.Err != "endpoint has no secret" {
		t.Fatalf("outcome %+v", out)
	}
	if got, _ := rcv.requests(); len(got) != 0 {
		t.Fatalf("%d requests sent for invalid input", len(got))
	}
}

// TestDeliverUntrustedCertificate: TLS is verified; a receiver whose
// certificate does not check out is a failed attempt, not a delivery.
func TestDeliverUntrustedCertificate(t *testing.T) {
	t.Parallel()
	var hits int
	var mu sync.Mutex
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer s.Close()
	out := Deliver(t.Context(), loopbackClient(0), endpoint(t, s.URL+"/?token=s3cr3t", NewSecret()), testEvent())
	if out.Result != Retry || out.StatusCode != 0 || !strings.Contains(out.Err, "certificate") || strings.Contains(out.Err, "s3cr3t") {
		t.Fatalf("outcome %+v", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("request reached a receiver with an untrusted certificate")
	}
}
