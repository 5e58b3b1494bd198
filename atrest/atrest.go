// Package atrest encrypts secrets that the server must read back, such
// as webhook signing secrets (signing needs the secret itself, so a hash
// will not do), before they are stored.
//
// A sealed value is "enc1:" + key id + ":" + base64(nonce || AES-256-GCM
// ciphertext). The key id (8 hex digits derived from the key) names the
// key that sealed it, so keys can rotate: values are sealed with the
// current key and opened with whichever key they name, the current one or
// an old one kept for that. The caller binds each value to its row (the
// additional data, e.g. the webhook endpoint's id), so that a sealed value
// copied to another row does not open there.
//
// A stored value without the prefix is plaintext from before encryption
// was configured, and opens as itself: existing rows keep working, and
// are sealed when next written.
package atrest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed value. Webhook secrets start with "whsec_",
// so a plaintext secret is never taken for a sealed one.
const Prefix = "enc1:"

// KeySize is the length of a key: AES-256.
const KeySize = 32

var (
	// ErrNoKey: a sealed value, and no keys are configured.
	ErrNoKey = errors.New("atrest: value is encrypted and no key is configured")
	// ErrUnknownKey: a sealed value names a key that is not configured.
	ErrUnknownKey = errors.New("atrest: value is encrypted with a key that is not configured")
	// ErrCorrupt: a sealed value that is malformed, altered, or bound to
	// other additional data.
	ErrCorrupt = errors.New("atrest: encrypted value does not open (altered, or stored for another row)")
)

// Keys seal with the current key and open with any of them. A nil *Keys
// is valid: it seals nothing (values are stored as they are) and opens
// only plaintext.
type Keys struct {
	current string
	aeads   map[string]cipher.AEAD
}

// New returns keys that seal with current and open with current and old.
func New(current []byte, old ...[]byte) (*Keys, error) {
	k := &Keys{aeads: map[string]cipher.AEAD{}}
	id, err := k.add(current)
	if err != nil {
		return nil, fmt.Errorf("current key: %w", err)
	}
	k.current = id
	for i, o := range old {
		if _, err := k.add(o); err != nil {
			return nil, fmt.Errorf("old key %d: %w", i+1, err)
		}
	}
	return k, nil
}

func (k *Keys) add(key []byte) (string, error) {
	if len(key) != KeySize {
		return "", fmt.Errorf("a key is %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	id := KeyID(key)
	k.aeads[id] = aead
	return id, nil
}

// Parse reads keys in the environment's form: current is the base64 of a
// 32-byte key; old lists base64 keys separated by commas (spaces around
// them are ignored). Both empty: no keys (nil, nil); old without current
// is an error (there would be nothing to seal with).
func Parse(current, old string) (*Keys, error) {
	current = strings.TrimSpace(current)
	var olds [][]byte
	for _, s := range strings.Split(old, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		b, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("old key %d: %w", len(olds)+1, err)
		}
		olds = append(olds, b)
	}
	if current == "" {
		if len(olds) > 0 {
			return nil, errors.New("old keys are set but no current key")
		}
		return nil, nil
	}
	cur, err := decodeKey(current)
	if err != nil {
		return nil, fmt.Errorf("current key: %w", err)
	}
	return New(cur, olds...)
}

func decodeKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, errors.New("not base64")
		}
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes, not %d", len(b), KeySize)
	}
	return b, nil
}

// KeyID is the id a sealed value names its key by: the first 4 bytes of
// the key's SHA-256, in hex. It tells keys apart; it reveals nothing
// usable about the key.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// CurrentID is the id of the key that seals ("" for nil keys).
func (k *Keys) CurrentID() string {
	if k == nil {
		return ""
	}
	return k.current
}

// Sealed reports whether a stored value is sealed (not plaintext).
func Sealed(stored string) bool { return strings.HasPrefix(stored, Prefix) }

// Seal encrypts plaintext bound to ad with the current key. Nil keys
// return plaintext as it is.
func (k *Keys) Seal(plaintext, ad string) (string, error) {
	if k == nil {
		return plaintext, nil
	}
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(ad))
	return Prefix + k.current + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open returns the plaintext of a stored value bound to ad: a plaintext
// value as it is, a sealed one decrypted with the key it names.
func (k *Keys) Open(stored, ad string) (string, error) {
	rest, ok := strings.CutPrefix(stored, Prefix)
	if !ok {
		return stored, nil
	}
	if k == nil {
		return "", ErrNoKey
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", ErrCorrupt
	}
	aead, ok := k.aeads[id]
	if !ok {
		return "", fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", ErrCorrupt
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrCorrupt
	}
	return string(plain), nil
}
