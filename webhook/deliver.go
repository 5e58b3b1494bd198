package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd"
)

// maxResponseBody is how much of a receiver's response body is read (and
// discarded) so the connection can be reused; the body means nothing to us,
// and a receiver must not be able to make us read without end.
const maxResponseBody = 64 << 10

// Result is what an attempt means for its delivery.
type Result int

// Results of an attempt.
const (
	// Retry: the attempt failed (a status other than 2xx and 410, a
	// timeout, a refused or blocked connection, a broken response); try
	// again per the schedule.
	Retry Result = iota
	// Delivered: the receiver answered 2xx.
	Delivered
	// Gone: the receiver answered 410; disable the endpoint and fail the
	// delivery, as Standard Webhooks asks.
	Gone
)

func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Gone:
		return "gone"
	}
	return "retry"
}

// Endpoint is where and how to deliver.
type Endpoint struct {
	URL  string
	Keys Keys // current first; two during a rotation
}

// Outcome is one attempt, as the delivery log records it.
type Outcome struct {
	Result Result
	// StatusCode is the receiver's HTTP status, 0 if none was received.
	StatusCode int
	// Err says why the attempt failed, briefly; empty when delivered. It
	// never holds the URL (whose query may carry a token), a secret or a
	// header value.
	Err string
	// Duration is the attempt's wall time.
	Duration time.Duration
}

// Deliver makes one attempt to deliver ev to ep: POST of the Standard
// Webhooks body with webhook-id = ev.ID (the same on every attempt, so the
// receiver can de-duplicate) and webhook-timestamp = now (this attempt's
// time, so a receiver's replay window works on retries a day later).
// client should come from NewClient. An attempt cut short by ctx (a
// worker shutting down) reports Retry with Err "canceled"; the caller may
// choose not to count it against the schedule.
func Deliver(ctx context.Context, client *http.Client, ep Endpoint, ev *ledgerd.Event) Outcome {
	start := time.Now()
	out := deliver(ctx, client, ep, ev, start)
	out.Duration = time.Since(start)
	return out
}

func deliver(ctx context.Context, client *http.Client, ep Endpoint, ev *ledgerd.Event, now time.Time) Outcome {
	if len(ep.Keys) == 0 {
		return Outcome{Err: "endpoint has no secret"} // an unsigned request would teach receivers to skip the check
	}
	body, err := Payload(ev.Type, ev.CreatedAt, ev.Data)
	if err != nil {
		return Outcome{Err: "invalid event data"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return Outcome{Err: "invalid endpoint URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ledgerd-webhooks/1")
	ep.Keys.SetHeaders(req.Header, ev.ID, now, body)
	resp, err := client.Do(req)
	if err != nil {
		return Outcome{Err: describe(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	out := Outcome{StatusCode: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		out.Result = Delivered
	case c == http.StatusGone:
		out.Result, out.Err = Gone, "410 Gone: endpoint disabled"
	case c >= 300 && c <= 399:
		out.Err = fmt.Sprintf("HTTP %d: redirect not followed", c)
	default:
		out.Err = fmt.Sprintf("HTTP %d", c)
	}
	return out
}

// describe turns a client error into a short, URL-free reason.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error's text repeats the URL
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrBlockedAddress):
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Addr != nil {
			return "blocked: " + hostOnly(oe.Addr.String()) + " is not a public address"
		}
		return "blocked: not a public address"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return "DNS: host not found"
		}
		return "DNS: lookup failed"
	}
	s := err.Error()
	if strings.Contains(s, "malformed HTTP") {
		return "malformed HTTP response"
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
