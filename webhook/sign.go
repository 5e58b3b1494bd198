package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks. Go canonicalises them on the wire
// (Webhook-Id …); HTTP header names are case-insensitive.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signatureVersion tags an HMAC-SHA256 signature (Standard Webhooks "v1";
// "v1a" would be an asymmetric one, which we do not send).
const signatureVersion = "v1"

// Keys are an endpoint's HMAC keys, the current one first. During a secret
// rotation there are two, and every request carries both signatures, so a
// receiver that still has only the old secret keeps verifying until it is
// updated.
type Keys [][]byte

// ParseKeys parses an endpoint's secrets, the current one first.
func ParseKeys(secrets ...string) (Keys, error) {
	ks := make(Keys, 0, len(secrets))
	for _, s := range secrets {
		k, err := ParseSecret(s)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64>" per key, space-separated, the current key's first.
func (ks Keys) Sign(msgID string, ts int64, body []byte) string {
	var b []byte
	for i, k := range ks {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, signatureVersion+","...)
		b = base64.StdEncoding.AppendEncode(b, mac(k, msgID, strconv.FormatInt(ts, 10), body))
	}
	return string(b)
}

// SetHeaders sets the three Standard Webhooks headers of an attempt made at
// time now.
func (ks Keys) SetHeaders(h http.Header, msgID string, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, ks.Sign(msgID, ts, body))
}

// mac is HMAC-SHA256(key, id "." timestamp "." body). The timestamp is the
// header's text, so a receiver checks what was signed, not a re-rendering.
func mac(key []byte, msgID, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// DefaultTolerance is how far a receiver should let webhook-timestamp be
// from its own clock, the value Standard Webhooks libraries use.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify. Each is returned as is, so a receiver can tell them
// apart with errors.Is; none carries the secret or a signature.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("webhook: webhook-timestamp is not Unix seconds")
	ErrTimestampTooOld  = errors.New("webhook: webhook-timestamp too old")
	ErrTimestampTooNew  = errors.New("webhook: webhook-timestamp too far in the future")
	ErrNoMatch          = errors.New("webhook: no signature matches")
)

// maxSignatures bounds the work one header can cause a receiver: the
// sender puts at most two (during a rotation).
const maxSignatures = 8

// Verify checks a request as a receiver does: the headers are present, the
// timestamp is within tolerance of the receiver's clock (which is what
// makes a captured request useless for replay later), and at least one
// "v1," signature in webhook-signature matches one of secrets. Signatures
// of other versions are skipped, as the standard asks. Comparison is
// constant-time.
func Verify(secrets []string, h http.Header, body []byte, tolerance time.Duration) error {
	return VerifyAt(secrets, h, body, tolerance, time.Now())
}

// VerifyAt is Verify with the receiver's clock reading now.
func VerifyAt(secrets []string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	id, tss, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tss == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tss, 10, 64)
	if err != nil || tss[0] == '+' {
		return ErrInvalidTimestamp
	}
	// Compare in seconds: converting ts to a time.Time could overflow.
	switch n := now.Unix(); {
	case ts < n-int64(tolerance/time.Second):
		return ErrTimestampTooOld
	case ts > n+int64(tolerance/time.Second):
		return ErrTimestampTooNew
	}
	keys, err := ParseKeys(secrets...)
	if err != nil {
		return err
	}
	macs := make([][]byte, len(keys))
	for i, k := range keys {
		macs[i] = mac(k, id, tss, body)
	}
	n := 0
	for tok := range strings.FieldsSeq(sigs) {
		if n++; n > maxSignatures {
			break
		}
		ver, b64, ok := strings.Cut(tok, ",")
		if !ok || ver != signatureVersion {
			continue
		}
		got, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			continue
		}
		for _, want := range macs {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
