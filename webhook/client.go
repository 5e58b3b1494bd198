package webhook

import (
	"net"
	"net/http"
	"time"
)

// DefaultTimeout bounds one attempt, from dialling to the end of the
// response: a receiver slower than this is counted as failed and retried.
const DefaultTimeout = 15 * time.Second

// maxResponseHeaderBytes bounds what a receiver's response headers may
// make us hold.
const maxResponseHeaderBytes = 64 << 10

// ClientOptions configure NewClient.
type ClientOptions struct {
	// AllowPrivate turns the connect-time address check off
	// (LEDGERD_WEBHOOK_ALLOW_PRIVATE), for receivers on a private network
	// or, in tests, on loopback.
	AllowPrivate bool
	// Timeout bounds each attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// IdlePerHost is how many idle connections to one receiver are kept
	// for reuse (at least 8): as many as the attempts made to it at once,
	// or every attempt beyond them opens a new connection.
	IdlePerHost int
}

// NewClient returns the HTTP client deliveries go through. Unlike
// http.DefaultClient it: checks every address it connects to (unless
// AllowPrivate), after DNS resolution, so a delivery never reaches a
// non-public address whatever a name resolves to at that moment; ignores
// HTTP(S)_PROXY, which would both hide the real destination from that
// check and send customer traffic through whatever the environment names;
// never follows redirects; and bounds each attempt by Timeout. Share one
// client among deliveries: it keeps connections to receivers alive.
func NewClient(o ClientOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	d := &net.Dialer{Timeout: min(o.Timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		d.Control = dialControl
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    min(o.Timeout, 10*time.Second),
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    max(8, o.IdlePerHost),
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		// Hand back a 3xx instead of following it: a redirect may point
		// anywhere, and a receiver is expected to answer the URL it
		// registered. Deliver counts the 3xx as a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
