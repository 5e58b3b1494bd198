package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/atrest"
)

// TestSecretKeySettings: a key that is not base64 of 32 bytes stops
// `serve` and `worker` at start naming the variable, never printing the
// value; without a key each logs the plaintext warning once at start, and
// with one it logs the key id instead.
func TestSecretKeySettings(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/d?connect_timeout=2"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, atrest.KeySize))
	for _, cmd := range []string{"serve", "worker"} {
		for _, bad := range []map[string]string{
			{"LEDGERD_SECRET_KEY": short},
			{"LEDGERD_SECRET_KEY": "not-base64-%%%"},
			{"LEDGERD_SECRET_KEYS": good},
			{"LEDGERD_SECRET_KEY": good, "LEDGERD_SECRET_KEYS": good + "," + short},
		} {
			var out strings.Builder
			err := run(context.Background(), []string{cmd}, env(with(bad)), &out, &out)
			if err == nil || !strings.Contains(err.Error(), "LEDGERD_SECRET_KEY") {
				t.Errorf("%s with %v: error %v, want one naming LEDGERD_SECRET_KEY", cmd, bad, err)
				continue
			}
			if strings.Contains(err.Error()+out.String(), short) {
				t.Errorf("%s: a key's value is printed: %v / %s", cmd, err, out.String())
			}
		}

		var out strings.Builder
		_ = run(context.Background(), []string{cmd}, env(base), &out, &out)
		if n := strings.Count(out.String(), "webhook signing secrets are stored in the database in plaintext"); n != 1 {
			t.Errorf("%s without a key: the plaintext warning is logged %d times:\n%s", cmd, n, out.String())
		}
		out.Reset()
		_ = run(context.Background(), []string{cmd}, env(with(map[string]string{"LEDGERD_SECRET_KEY": good})), &out, &out)
		k, _ := atrest.Parse(good, "")
		if !strings.Contains(out.String(), k.CurrentID()) || strings.Contains(out.String(), "in plaintext") || strings.Contains(out.String(), good) {
			t.Errorf("%s with a key: want its id logged, no warning and no key:\n%s", cmd, out.String())
		}
	}
}
