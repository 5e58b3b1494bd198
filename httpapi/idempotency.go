package httpapi

import (
	"net/http"

	"github.com/ledgerd/ledgerd"
)

// idempotencyKey reads and checks the Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, *ledgerd.Error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 || !ledgerd.ValidIdempotencyKey(vals[0]) {
		return "", ledgerd.Invalid("Idempotency-Key", "must be one header of 1 to 255 printable characters")
	}
	return vals[0], nil
}

// hashStart begins a request's canonical form: what every Idempotency-Key
// is bound to before the body.
func hashStart(method, path string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	return append(b, '\n')
}
