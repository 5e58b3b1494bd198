package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPasswordOnly: a cluster created with trust (as `ledgerd dev` made them
// before) and then started with a password accepts no connection without
// it, over loopback TCP or the Unix socket; a second start with another
// password replaces the first.
func TestPasswordOnly(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chmod(base, 0o755); err != nil { // the postgres user must enter it
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(base, "pgdata")

	c, err := Start(ctx, Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	connect(t, ctx, c.URL("postgres")) // trust, as before
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	for _, pw := range []string{"first-0123456789abcdef", "second-0123456789abcdef"} {
		c, err := Start(ctx, Options{DataDir: dataDir, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.URL("postgres"), ":"+pw+"@") {
			t.Errorf("URL lacks the password: %s", c.URL("postgres"))
		}
		conn := connect(t, ctx, c.URL("postgres"))
		var method string
		if err := conn.QueryRow(ctx, "SELECT substr(rolpassword, 1, 13) FROM pg_authid WHERE rolname = 'postgres'").Scan(&method); err != nil || method != "SCRAM-SHA-256" {
			t.Errorf("stored password %q, %v; want a SCRAM verifier", method, err)
		}
		for name, url := range map[string]string{
			"tcp, no password":     fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port),
			"tcp, wrong password":  fmt.Sprintf("postgres://postgres:nope@127.0.0.1:%d/postgres?sslmode=disable", c.Port),
			"socket, no password":  fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", c.SocketDir, c.Port),
			"tcp, other role":      fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", "nobody", c.Port),
			"tcp, first password?": strings.Replace(c.URL("postgres"), pw, "first-0123456789abcdef", 1),
		} {
			if name == "tcp, first password?" && pw == "first-0123456789abcdef" {
				continue
			}
			cc, err := pgx.Connect(ctx, url)
			if err == nil {
				cc.Close(ctx)
				t.Errorf("%s (password %s): connected", name, pw)
			} else if !strings.Contains(err.Error(), "password") && !strings.Contains(err.Error(), "SASL") {
				t.Errorf("%s: unexpected error %v", name, err)
			}
		}
		conn.Close(ctx)
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(base, "pgdata.log"))
	if strings.Contains(string(log), "first-0123456789abcdef") {
		t.Error("the server log holds a password")
	}

	// Remove (ledgerd dev --reset) refuses a running cluster.
	c, err = Start(ctx, Options{DataDir: dataDir, Password: "x-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Remove(dataDir); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("Remove of a running cluster: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dataDir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dataDir, dataDir + ".log"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after Remove: %v", p, err)
		}
	}
}
