package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
)

// SecretPrefix starts every endpoint secret, as Standard Webhooks suggests,
// so that a leaked secret is recognisable to secret scanners.
const SecretPrefix = "whsec_"

// secretBytes is the length of a generated key: 256 bits, the block-size
// guidance for HMAC-SHA256 keys being "at least the output length".
const secretBytes = 32

// Bounds on a key that ParseSecret accepts. The lower bound is Standard
// Webhooks' recommendation (24 bytes); the upper is HMAC-SHA256's block
// size, beyond which HMAC hashes the key first and length buys nothing.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
)

// ErrInvalidSecret is returned for a secret that is not "whsec_" followed
// by the standard base64 of 24 to 64 bytes.
var ErrInvalidSecret = errors.New("webhook: secret must be whsec_ followed by the base64 of 24 to 64 bytes")

// NewSecret draws a new endpoint secret.
func NewSecret() string {
	var k [secretBytes]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(k[:])
}

// ParseSecret returns the HMAC key of a secret: the base64-decoded part
// after "whsec_".
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, ErrInvalidSecret
	}
	k, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(k) < minKeyBytes || len(k) > maxKeyBytes {
		return nil, ErrInvalidSecret
	}
	return k, nil
}
