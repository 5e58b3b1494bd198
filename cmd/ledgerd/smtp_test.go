package main

import (
	"context"
	"strings"
	"testing"
)

// TestSMTPSettingsChecked: an SMTP URL that could never send, or one
// without a sender, stops `worker` and `serve` at start naming the
// setting; `worker --help` lists both settings and hides the SMTP
// password.
func TestSMTPSettingsChecked(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://ledgerd:pw@127.0.0.1:1/ledgerd"}
	for _, tc := range []struct {
		cmd  string
		vars map[string]string
		want string
	}{
		{"worker", map[string]string{"LEDGERD_SMTP_URL": "http://mail.example.com", "LEDGERD_SMTP_FROM": "a@example.com"}, "LEDGERD_SMTP_URL"},
		{"worker", map[string]string{"LEDGERD_SMTP_URL": "smtp://:25", "LEDGERD_SMTP_FROM": "a@example.com"}, "LEDGERD_SMTP_URL"},
		{"worker", map[string]string{"LEDGERD_SMTP_URL": "smtp://mail.example.com:99999", "LEDGERD_SMTP_FROM": "a@example.com"}, "LEDGERD_SMTP_URL"},
		{"worker", map[string]string{"LEDGERD_SMTP_URL": "smtp://mail.example.com"}, "LEDGERD_SMTP_FROM"},
		{"worker", map[string]string{"LEDGERD_SMTP_URL": "smtps://mail.example.com", "LEDGERD_SMTP_FROM": "not an address"}, "LEDGERD_SMTP_FROM"},
		{"serve", map[string]string{"LEDGERD_SMTP_URL": "ftp://x", "LEDGERD_SMTP_FROM": "a@example.com"}, "LEDGERD_SMTP_URL"},
	} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range tc.vars {
			vars[k] = v
		}
		var stdout, stderr strings.Builder
		err := run(context.Background(), []string{tc.cmd}, env(vars), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %v: error %v, want one naming %q", tc.cmd, tc.vars, err, tc.want)
		}
	}
	vars := map[string]string{"LEDGERD_SMTP_URL": "smtp://mailer:smtp-pw-71c@mail.example.com:587"}
	for k, v := range base {
		vars[k] = v
	}
	var stdout, stderr strings.Builder
	_ = run(context.Background(), []string{"worker", "--help"}, env(vars), &stdout, &stderr)
	help := stdout.String() + stderr.String()
	for _, want := range []string{"LEDGERD_SMTP_URL", "LEDGERD_SMTP_FROM"} {
		if !strings.Contains(help, want) {
			t.Errorf("worker --help does not mention %s", want)
		}
	}
	if strings.Contains(help, "smtp-pw-71c") {
		t.Errorf("worker --help prints the SMTP password")
	}
}
