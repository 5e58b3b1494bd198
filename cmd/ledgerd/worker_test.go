package main

import (
	"context"
	"strings"
	"testing"
)

// TestWorkerSettingsChecked: a bad tail setting stops `worker` and `serve`
// at start with a message naming it, before any database is contacted;
// `worker --help` lists the tail's settings and hides the database
// password.
func TestWorkerSettingsChecked(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://ledgerd:pw-93af@127.0.0.1:1/ledgerd"}
	for _, tc := range []struct {
		cmd, name, value, want string
	}{
		{"worker", "LEDGERD_WEBHOOK_RETRY_SCHEDULE", "1s,0s", "wait 2"},
		{"worker", "LEDGERD_WEBHOOK_RETRY_SCHEDULE", "soon", "LEDGERD_WEBHOOK_RETRY_SCHEDULE"},
		{"worker", "LEDGERD_WORKER_CONCURRENCY", "0", "LEDGERD_WORKER_CONCURRENCY"},
		{"worker", "LEDGERD_WORKER_POOL_MAX_CONNS", "2", "LEDGERD_WORKER_POOL_MAX_CONNS"},
		{"serve", "LEDGERD_WEBHOOK_RETRY_SCHEDULE", "1s,-1s", "wait 2"},
		{"serve", "LEDGERD_WORKERS", "maybe", "LEDGERD_WORKERS"},
	} {
		vars := map[string]string{tc.name: tc.value}
		for k, v := range base {
			vars[k] = v
		}
		var stdout, stderr strings.Builder
		err := run(context.Background(), []string{tc.cmd}, env(vars), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %s=%s: error %v, want one naming %q", tc.cmd, tc.name, tc.value, err, tc.want)
		}
	}
	var stdout, stderr strings.Builder
	_ = run(context.Background(), []string{"worker", "--help"}, env(base), &stdout, &stderr)
	help := stdout.String() + stderr.String()
	for _, want := range []string{"LEDGERD_WEBHOOK_RETRY_SCHEDULE", "LEDGERD_WEBHOOK_ALLOW_PRIVATE", "LEDGERD_WORKER_CONCURRENCY",
		"LEDGERD_WEBHOOK_PER_ENDPOINT", "LEDGERD_WORKER_POOL_MAX_CONNS", "xxxxx"} {
		if !strings.Contains(help, want) {
			t.Errorf("worker --help does not mention %s:\n%s", want, help)
		}
	}
	if strings.Contains(help, "pw-93af") {
		t.Errorf("worker --help prints the database password")
	}
}
