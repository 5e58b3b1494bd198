package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/pgcluster"
)

// TestDev runs `ledgerd dev` twice on one data directory: its PostgreSQL
// takes only the generated password (finding L10), request lines go to
// the log file the banner names and not to the terminal, and --reset
// starts from empty data with the same admin key.
func TestDev(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skip(err)
	}
	base := t.TempDir()
	if os.Geteuid() == 0 { // the cluster runs as postgres, which must enter it
		for _, d := range []string{base, filepath.Dir(base)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	dataDir := filepath.Join(base, ".ledgerd")
	args := []string{"dev", "--data-dir=" + dataDir, "--addr=127.0.0.1:0", "--debug-addr="}
	client := &http.Client{Timeout: 10 * time.Second}

	s := start(t, args, nil)
	s.waitFor(t, s.stderr, "ledgerd dev is up")
	api := regexp.MustCompile(`API +(http://\S+)`).FindStringSubmatch(s.stderr.String())[1]
	logPath := filepath.Join(dataDir, "ledgerd.log")
	if !strings.Contains(s.stderr.String(), "logs        "+logPath) {
		t.Errorf("the banner does not say where the logs go:\n%s", s.stderr)
	}
	keyBytes, err := os.ReadFile(filepath.Join(dataDir, "admin-key"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(keyBytes))
	req, _ := http.NewRequest("POST", api+"/v1/ledgers/demo/accounts", strings.NewReader(`{"id":"before-reset","asset":"USD"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create account: %d", resp.StatusCode)
	}
	if code, _ := get(t, client, api+"/v1/ledgers/demo/accounts/before-reset", key); code != 200 {
		t.Fatalf("get account: %d", code)
	}

	// The cluster: password only, the password in a 0600 file.
	pwFile := filepath.Join(dataDir, "pg-password")
	fi, err := os.Stat(pwFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pg-password: %v %v", fi, err)
	}
	pid, err := os.ReadFile(filepath.Join(dataDir, "pgdata", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	port := strings.TrimSpace(strings.Split(string(pid), "\n")[3])
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:"+port+"/ledgerd?sslmode=disable"); err == nil {
		conn.Close(ctx)
		t.Error("connected to dev's PostgreSQL without a password")
	}
	pw, _ := os.ReadFile(pwFile)
	conn, err := pgx.Connect(ctx, "postgres://postgres:"+strings.TrimSpace(string(pw))+"@127.0.0.1:"+port+"/ledgerd?sslmode=disable")
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	conn.Close(ctx)

	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), `"msg":"request"`) {
		t.Errorf("no request lines in %s:\n%s", logPath, logged)
	}
	if strings.Contains(s.stderr.String(), "/v1/ledgers/demo/accounts") || strings.Contains(s.stderr.String(), `"msg":"request"`) {
		t.Errorf("request lines on the terminal:\n%s", s.stderr)
	}
	for _, out := range []string{s.stdout.String(), s.stderr.String(), string(logged)} {
		if strings.Contains(out, key) || strings.Contains(out, strings.TrimSpace(string(pw))) {
			t.Error("a secret was printed or logged")
		}
	}

	s = start(t, append(args, "--reset"), nil)
	s.waitFor(t, s.stderr, "ledgerd dev is up")
	api = regexp.MustCompile(`API +(http://\S+)`).FindStringSubmatch(s.stderr.String())[1]
	if code, _ := get(t, client, api+"/v1/ledgers/demo/accounts/before-reset", key); code != 404 {
		t.Errorf("account after --reset: %d, want 404", code)
	}
	if code, _ := get(t, client, api+"/v1/ledgers/demo", key); code != 200 {
		t.Errorf("demo ledger after --reset with the same key: %d", code)
	}
}
