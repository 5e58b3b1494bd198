package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// standardVerify checks a request the way the Standard Webhooks reference
// libraries do, written apart from the package's own code so that a shared
// mistake cannot hide: strip "whsec_", base64-decode the key, sign
// "id.timestamp.body", and compare "v1,<base64>" against each
// space-separated signature in constant time.
func standardVerify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("Webhook-Id") + "." + h.Get("Webhook-Timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Split(h.Get("Webhook-Signature"), " ") {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return true
		}
	}
	return false
}

func TestSecret(t *testing.T) {
	t.Parallel()
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two secrets alike")
	}
	for _, s := range []string{a, b} {
		if !strings.HasPrefix(s, "whsec_") {
			t.Fatalf("%q lacks whsec_", s)
		}
		k, err := ParseSecret(s)
		if err != nil || len(k) != 32 {
			t.Fatalf("ParseSecret(%q) = %d bytes, %v", s, len(k), err)
		}
		raw, _ := base64.StdEncoding.DecodeString(s[6:])
		if string(raw) != string(k) {
			t.Fatal("key is not the base64 of the part after whsec_")
		}
	}
	// The Standard Webhooks test vector's secret (24 bytes, as Svix draws).
	if k, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil || len(k) != 24 {
		t.Fatalf("24-byte secret: %d, %v", len(k), err)
	}
	for _, bad := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 30))),
		"WHSEC_" + a[6:]} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrInvalidSecret", bad, err)
		}
	}
}

// TestSignKnownVector checks Sign against the test vector published with
// the Standard Webhooks libraries.
func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	ks, err := ParseKeys("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := ks.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	oldS, newS := NewSecret(), NewSecret()
	body := []byte(`{"type":"transaction.posted","timestamp":"2026-11-22T10:00:00.123456Z","data":{"id":"x"}}`)
	now := time.Unix(1_800_000_000, 0)

	one, _ := ParseKeys(newS)
	both, _ := ParseKeys(newS, oldS)
	h1, h2 := http.Header{}, http.Header{}
	one.SetHeaders(h1, "evt_1", now, body)
	both.SetHeaders(h2, "evt_1", now, body)

	if h1.Get("webhook-timestamp") != "1800000000" || h1.Get("webhook-id") != "evt_1" {
		t.Fatalf("headers %v", h1)
	}
	sigs := strings.Split(h2.Get("webhook-signature"), " ")
	if len(sigs) != 2 || sigs[0] != h1.Get("webhook-signature") {
		t.Fatalf("rotation header %q: want the new key's signature first, then the old", h2.Get("webhook-signature"))
	}
	// A receiver with either secret verifies a rotating endpoint's request.
	for _, s := range []string{oldS, newS} {
		if !standardVerify(s, h2, body) {
			t.Fatal("independent verifier rejects a rotation signature")
		}
		if err := VerifyAt([]string{s}, h2, body, DefaultTolerance, now); err != nil {
			t.Fatal(err)
		}
	}
	if standardVerify(oldS, h1, body) {
		t.Fatal("old secret verifies a request signed with the new one only")
	}

	cases := []struct {
		name    string
		secrets []string
		mutate  func(h http.Header) http.Header
		body    string
		now     time.Time
		want    error
	}{
		{"valid", []string{newS}, nil, string(body), now, nil},
		{"valid_one_of_several_secrets", []string{oldS, newS}, nil, string(body), now, nil},
		{"tolerance_edge_old", []string{newS}, nil, string(body), now.Add(5 * time.Minute), nil},
		{"tolerance_edge_new", []string{newS}, nil, string(body), now.Add(-5 * time.Minute), nil},
		{"too_old", []string{newS}, nil, string(body), now.Add(5*time.Minute + time.Second), ErrTimestampTooOld},
		{"too_new", []string{newS}, nil, string(body), now.Add(-5*time.Minute - time.Second), ErrTimestampTooNew},
		{"wrong_secret", []string{oldS}, nil, string(body), now, ErrNoMatch},
		{"body_changed", []string{newS}, nil, string(body) + " ", now, ErrNoMatch},
		{"id_changed", []string{newS}, set("webhook-id", "evt_2"), string(body), now, ErrNoMatch},
		{"timestamp_changed", []string{newS}, set("webhook-timestamp", "1800000001"), string(body), now, ErrNoMatch},
		{"timestamp_leading_zero", []string{newS}, set("webhook-timestamp", "01800000000"), string(body), now, ErrNoMatch},
		{"timestamp_plus", []string{newS}, set("webhook-timestamp", "+1800000000"), string(body), now, ErrInvalidTimestamp},
		{"timestamp_not_number", []string{newS}, set("webhook-timestamp", "soon"), string(body), now, ErrInvalidTimestamp},
		{"timestamp_huge", []string{newS}, set("webhook-timestamp", "9223372036854775807"), string(body), now, ErrTimestampTooNew},
		{"timestamp_very_negative", []string{newS}, set("webhook-timestamp", "-9223372036854775808"), string(body), now, ErrTimestampTooOld},
		{"no_id", []string{newS}, set("webhook-id", ""), string(body), now, ErrMissingHeaders},
		{"no_signature", []string{newS}, set("webhook-signature", ""), string(body), now, ErrMissingHeaders},
		{"other_version_only", []string{newS}, func(h http.Header) http.Header {
			h.Set("webhook-signature", "v1a,"+strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
			return h
		}, string(body), now, ErrNoMatch},
		{"unknown_versions_skipped", []string{newS}, func(h http.Header) http.Header {
			h.Set("webhook-signature", "v2,abc v1,!!! "+h.Get("webhook-signature"))
			return h
		}, string(body), now, nil},
		{"invalid_secret", []string{"whsec_short"}, nil, string(body), now, ErrInvalidSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := h1.Clone()
			if c.mutate != nil {
				h = c.mutate(h)
			}
			if err := VerifyAt(c.secrets, h, []byte(c.body), DefaultTolerance, c.now); !errors.Is(err, c.want) {
				t.Fatalf("VerifyAt = %v, want %v", err, c.want)
			}
		})
	}
}

func set(k, v string) func(http.Header) http.Header {
	return func(h http.Header) http.Header { h.Set(k, v); return h }
}

// TestSignatureMatchesOpenSSL runs the openssl command line that
// docs/webhooks.md shows a receiver, on a signature this package made.
func TestSignatureMatchesOpenSSL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	secret := NewSecret()
	ks, _ := ParseKeys(secret)
	id, ts := "evt_0190f0a0-0000-7000-8000-000000000001", int64(1_800_000_000)
	body := `{"type":"transaction.posted","timestamp":"2026-11-22T10:00:00.123456Z","data":{"id":"a b","memo":"it's \"quoted\""}}`
	sig := ks.Sign(id, ts, []byte(body))

	// As in the docs: the key hex-decoded from the base64 after whsec_,
	// printf rather than echo -n so that no shell reinterprets the body.
	script := `key=$(printf %s "${secret#whsec_}" | base64 -d | od -An -vtx1 | tr -d ' \n')
printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(cmd.Environ(), "secret="+secret, "id="+id, "ts="+strconv.FormatInt(ts, 10), "body="+body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := "v1," + strings.TrimSpace(string(out)); got != sig {
		t.Fatalf("openssl says %s, Sign says %s", got, sig)
	}
}

// FuzzVerify feeds Verify arbitrary header values and bodies: it must never
// panic, and must accept only what a correct signer produced.
func FuzzVerify(f *testing.F) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ks, _ := ParseKeys(secret)
	now := time.Unix(1_800_000_000, 0)
	good := ks.Sign("evt_1", now.Unix(), []byte("{}"))
	f.Add("evt_1", "1800000000", good, []byte("{}"))
	f.Add("evt_1", "1800000000", "v1,"+good, []byte("{}"))
	f.Add("evt_1", "1800000000", "v1, v1,,, v2,x "+good, []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("x", "-1", "v1,====", []byte("a"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := VerifyAt([]string{secret}, h, body, DefaultTolerance, now)
		if err == nil && !standardVerify(secret, h, body) {
			// Verify skips unknown versions and tolerates repeated spaces;
			// it must still only accept a signature that is right.
			m := hmac.New(sha256.New, mustKey(secret))
			m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
			want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			if !strings.Contains(" "+strings.Join(strings.Fields(h.Get("webhook-signature")), " ")+" ", " "+want+" ") {
				t.Fatalf("accepted id=%q ts=%q sig=%q", id, ts, sig)
			}
		}
	})
}

func mustKey(s string) []byte {
	k, err := ParseSecret(s)
	if err != nil {
		panic(err)
	}
	return k
}
