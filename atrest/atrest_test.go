package atrest_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/atrest"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, atrest.KeySize) }

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSealOpenRoundTrip(t *testing.T) {
	k, err := atrest.New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Seal(secret, "we_1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal(secret, "we_1")
	if err != nil {
		t.Fatal(err)
	}
	if !atrest.Sealed(a) || strings.Contains(a, secret) || strings.Contains(a, secret[len("whsec_"):]) {
		t.Fatalf("sealed value %q shows the secret or lacks the prefix", a)
	}
	if a == b {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	if want := atrest.Prefix + atrest.KeyID(key(1)) + ":"; !strings.HasPrefix(a, want) {
		t.Fatalf("sealed value %q does not start with %q", a, want)
	}
	for _, s := range []string{a, b} {
		got, err := k.Open(s, "we_1")
		if err != nil || got != secret {
			t.Fatalf("Open = %q, %v; want the secret", got, err)
		}
	}
}

func TestPlaintextOpensAsItself(t *testing.T) {
	k, _ := atrest.New(key(1))
	for _, keys := range []*atrest.Keys{k, nil} {
		got, err := keys.Open(secret, "we_1")
		if err != nil || got != secret {
			t.Fatalf("Open(plaintext) = %q, %v", got, err)
		}
	}
}

func TestNilKeysStorePlaintextAndRefuseSealed(t *testing.T) {
	var none *atrest.Keys
	got, err := none.Seal(secret, "we_1")
	if err != nil || got != secret {
		t.Fatalf("nil Seal = %q, %v; want the plaintext", got, err)
	}
	k, _ := atrest.New(key(1))
	sealed, _ := k.Seal(secret, "we_1")
	if _, err := none.Open(sealed, "we_1"); !errors.Is(err, atrest.ErrNoKey) {
		t.Fatalf("nil Open(sealed) error = %v, want ErrNoKey", err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := atrest.New(key(1))
	sealedOld, _ := old.Seal(secret, "we_1")

	// The new key seals; the old one still opens what it sealed.
	k, err := atrest.Parse(b64(key(2)), " "+b64(key(1))+" , ")
	if err != nil {
		t.Fatal(err)
	}
	if k.CurrentID() != atrest.KeyID(key(2)) {
		t.Fatalf("current id %s, want the new key's %s", k.CurrentID(), atrest.KeyID(key(2)))
	}
	if got, err := k.Open(sealedOld, "we_1"); err != nil || got != secret {
		t.Fatalf("Open(old seal) = %q, %v", got, err)
	}
	sealedNew, _ := k.Seal(secret, "we_1")
	if !strings.HasPrefix(sealedNew, atrest.Prefix+atrest.KeyID(key(2))+":") {
		t.Fatalf("new seal %q is not under the current key", sealedNew)
	}
	// Once the old key is dropped, its values no longer open, and say why.
	newOnly, _ := atrest.New(key(2))
	if _, err := newOnly.Open(sealedOld, "we_1"); !errors.Is(err, atrest.ErrUnknownKey) {
		t.Fatalf("Open without the old key: %v, want ErrUnknownKey", err)
	}
	if got, err := newOnly.Open(sealedNew, "we_1"); err != nil || got != secret {
		t.Fatalf("Open(new seal) = %q, %v", got, err)
	}
}

func TestTamperedOrMovedDoesNotOpen(t *testing.T) {
	k, _ := atrest.New(key(1))
	sealed, _ := k.Seal(secret, "we_1")
	if _, err := k.Open(sealed, "we_2"); !errors.Is(err, atrest.ErrCorrupt) {
		t.Fatalf("Open with another row's data: %v, want ErrCorrupt", err)
	}
	body := sealed[len(atrest.Prefix)+9:]
	raw, _ := base64.RawStdEncoding.DecodeString(body)
	raw[len(raw)-1] ^= 1
	flipped := sealed[:len(atrest.Prefix)+9] + base64.RawStdEncoding.EncodeToString(raw)
	for _, bad := range []string{flipped, sealed[:len(sealed)-4], atrest.Prefix + "nokeyid", atrest.Prefix + atrest.KeyID(key(1)) + ":!!"} {
		if _, err := k.Open(bad, "we_1"); !errors.Is(err, atrest.ErrCorrupt) {
			t.Errorf("Open(%q): %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestParse(t *testing.T) {
	if k, err := atrest.Parse("", ""); k != nil || err != nil {
		t.Fatalf("Parse of nothing = %v, %v; want no keys", k, err)
	}
	// Unpadded base64 is accepted as well.
	if k, err := atrest.Parse(strings.TrimRight(b64(key(3)), "="), ""); err != nil || k.CurrentID() != atrest.KeyID(key(3)) {
		t.Fatalf("Parse unpadded = %v, %v", k, err)
	}
	for name, c := range map[string][2]string{
		"not base64":      {"%%%", ""},
		"short key":       {b64(key(1)[:16]), ""},
		"old without new": {"", b64(key(1))},
		"bad old":         {b64(key(1)), "nope!"},
	} {
		if _, err := atrest.Parse(c[0], c[1]); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		} else if strings.Contains(err.Error(), c[0]) && c[0] != "" {
			t.Errorf("%s: the error %q repeats the key", name, err)
		}
	}
}
