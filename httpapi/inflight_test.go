package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/prometheus/client_golang/prometheus"
)

// rawRequest sends a request's head (and prefix of its body) on its own
// connection and leaves the connection open.
func rawRequest(t *testing.T, e *ledgertest.Env, path, key, lengthHeader string, prefix []byte) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n%s\r\n\r\n", path, key, lengthHeader)
	if _, err := nc.Write(prefix); err != nil {
		t.Fatal(err)
	}
	return nc
}

// answerBeforeBody declares a body of n bytes, sends none of it, and
// returns the answer the server gives without reading it (nil when the
// server waits for the body instead).
func answerBeforeBody(t *testing.T, e *ledgertest.Env, path, key string, n int, wait time.Duration) *http.Response {
	t.Helper()
	nc := rawRequest(t, e, path, key, fmt.Sprintf("Content-Length: %d", n), nil)
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestBodyBudget: the bytes of request bodies a node holds are bounded per
// key (429 rate_limited) and per node (503 overloaded), both with
// Retry-After and before a byte of the refused body is read. A declared
// Content-Length is taken up front; a chunked body as it arrives. The
// budget comes back when the request ends, however it ends.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	reg := prometheus.NewRegistry()
	c := setup(t, ledgertest.Options{API: func(cfg *httpapi.Config) {
		cfg.BodyBudget, cfg.KeyBodyBudget = 20*mib, 16*mib
		cfg.Metrics = httpapi.NewMetrics(reg)
	}})
	// held waits until the node holds at least n bytes of bodies.
	held := func(n float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == "ledgerd_http_body_bytes_in_flight" && mf.GetMetric()[0].GetGauge().GetValue() >= n {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the node never held %v bytes of bodies (%v)", n, reg)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	l := c.ledger("budget")
	c.account(l, "world", "USD", nil)
	c.account(l, "a", "USD", nil)
	other := c.key(l, "write")
	batch := txPath(l) + "/batch"
	small := `{"transactions":[{"postings":[{"source":"world","destination":"a","amount":1,"asset":"USD"}]}]}`

	refused := func(what string) {
		t.Helper()
		held(16 * mib)
		// The bootstrap key holds 16 MiB: 1 MiB more is over its budget.
		r := answerBeforeBody(t, c.e, batch, admin, mib, 10*time.Second)
		if r == nil || r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: a second body from the same key: %v, want 429 with Retry-After", what, r)
		}
		// Another key: 5 MiB more is over the node's 20 MiB.
		r = answerBeforeBody(t, c.e, batch, other, 5*mib, 10*time.Second)
		if r == nil || r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: over the node's budget: %v, want 503 with Retry-After", what, r)
		}
		// A small body still fits in what is left.
		c.expect(200, "", "POST", batch, other, small)
	}
	released := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := c.do("POST", batch, admin, small)
			if r.Status == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the budget did not come back: %d %s", what, r.Status, r.Body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A declared 16 MiB, of which 1 KiB arrives: the whole 16 MiB is held.
	stalled := rawRequest(t, c.e, batch, admin, fmt.Sprintf("Content-Length: %d", 16*mib), []byte(strings.Repeat(" ", 1024)))
	refused("declared length")
	stalled.Close()
	released("declared length")

	// A chunked body holds what it has grown to: after 9 MiB, the
	// buffer that takes the rest (16 MiB + 1) is paid for.
	chunked := rawRequest(t, c.e, batch, admin, "Transfer-Encoding: chunked", nil)
	chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", mib, strings.Repeat(" ", mib)))
	for range 9 {
		if _, err := chunked.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	refused("chunked")
	chunked.Close()
	released("chunked")
}
