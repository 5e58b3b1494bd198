package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

var errTooLarge = errors.New("body too large")

// readBody reads at most limit bytes. The share is taken before any byte
// is held: the declared Content-Length at once, a chunked body as its
// buffer grows (never beyond what is taken, so a body in memory is always
// paid for).
func readBody(r *http.Request, limit int64, share *bodyShare) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	ceiling := limit + 1 // one byte more than allowed tells "too large"
	if r.ContentLength >= 0 {
		ceiling = r.ContentLength + 1
	}
	if err := share.grow(max(r.ContentLength, 0)); err != nil {
		return nil, err
	}
	// A declared length is paid for before the read, so its buffer is
	// taken whole: growing it by doubling left as much again as garbage
	// (31 MB allocated for a 16 MB batch). A chunked body starts small.
	size := ceiling
	if r.ContentLength < 0 {
		size = 512
	}
	if err := share.grow(size); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, size)
	for {
		if int64(len(buf)) > limit {
			return nil, errTooLarge
		}
		if len(buf) == cap(buf) {
			next := min(2*int64(cap(buf)), ceiling)
			if next <= int64(cap(buf)) {
				return nil, errTooLarge // unreachable: net/http stops at the declared length
			}
			if err := share.grow(next); err != nil {
				return nil, err
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errTooLarge
	}
	return buf, nil
}

// jsonContentType reports whether a request body may be read as JSON: no
// Content-Type (curl and many clients send none), or application/json with
// at most a UTF-8 charset. Other +json types (application/problem+json,
// application/merge-patch+json) are refused: their semantics are not the
// API's, and accepting a type promises them. A charset other than UTF-8 is
// refused too, since the body is read as UTF-8 whatever it says.
func jsonContentType(r *http.Request) bool {
	v := r.Header.Get("Content-Type")
	if v == "application/json" { // what nearly every client sends: no parse
		return true
	}
	if strings.TrimSpace(v) == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

// decodeBody checks syntax (400), then runs fn, answering 422 with every
// field error it collected together with the request's unknown query
// parameters (which rank after 400). It reports whether the handler may go
// on.
func decodeBody(w http.ResponseWriter, rc *reqCtx, fn func(d *jx.Decoder, v *ledgerd.Validation)) bool {
	return decodeBytes(w, rc.body, rc.unknownQuery, fn)
}

// decodeActionBody is decodeBody for the hold and reversal actions, where
// an empty body counts as {}.
func decodeActionBody(w http.ResponseWriter, rc *reqCtx, fn func(d *jx.Decoder, v *ledgerd.Validation)) bool {
	body := rc.body
	if len(body) == 0 {
		body = []byte("{}")
	}
	return decodeBytes(w, body, rc.unknownQuery, fn)
}

func decodeBytes(w http.ResponseWriter, body []byte, unknown []string, fn func(d *jx.Decoder, v *ledgerd.Validation)) bool {
	if err := wellFormed(body); err != nil {
		writeProblem(w, err)
		return false
	}
	var v ledgerd.Validation
	addUnknownQuery(&v, unknown)
	fn(jx.DecodeBytes(body), &v)
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return false
	}
	return true
}
