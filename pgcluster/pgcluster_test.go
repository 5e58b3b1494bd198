package pgcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries skips the test when no PostgreSQL server binaries are
// installed, except in CI (CI=true), where that is a failure.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no PostgreSQL server binaries: %v", err)
		}
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, ctx context.Context, conn *pgx.Conn, name string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", name, err)
	}
	return v
}

func TestTempCluster(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	c, err := Start(ctx, Options{Settings: map[string]string{"shared_buffers": "16MB"}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.Stop()
		}
	})
	if c.Port == 0 || c.PID() == 0 {
		t.Fatalf("port %d pid %d", c.Port, c.PID())
	}
	if !strings.HasPrefix(c.DataDir, c.tempRoot) {
		t.Fatalf("data dir %s not under temp root %s", c.DataDir, c.tempRoot)
	}
	tempRoot, socketDir := c.tempRoot, c.SocketDir

	conn := connect(t, ctx, c.URL("postgres"))
	for name, want := range map[string]string{
		"fsync":              "on",
		"synchronous_commit": "on",
		"max_connections":    "200",
		"shared_buffers":     "16MB",
		"server_encoding":    "UTF8",
	} {
		if got := show(t, ctx, conn, name); got != want {
			t.Errorf("SHOW %s = %q, want %q", name, got, want)
		}
	}
	if got := show(t, ctx, conn, "unix_socket_directories"); got != socketDir {
		t.Errorf("unix_socket_directories = %q, want %q", got, socketDir)
	}
	if _, err := os.Stat(filepath.Join(socketDir, ".s.PGSQL."+strconv.Itoa(c.Port))); err != nil {
		t.Errorf("unix socket: %v", err)
	}

	// A template with a table and a row, and a database copied from it.
	if err := c.CreateDatabase(ctx, "tmpl", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "tmpl", ""); err != nil {
		t.Fatalf("second CreateDatabase must ignore 'already exists': %v", err)
	}
	tc, err := pgx.Connect(ctx, c.URL("tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('from template')"); err != nil {
		t.Fatal(err)
	}
	tc.Close(ctx)
	if err := c.CreateDatabase(ctx, "copy-1", "tmpl"); err != nil {
		t.Fatal(err)
	}
	cc := connect(t, ctx, c.URL("copy-1"))
	var v string
	if err := cc.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "from template" {
		t.Fatalf("copied row = %q, %v", v, err)
	}
	if _, err := cc.Exec(ctx, "INSERT INTO t VALUES ('committed before crash')"); err != nil {
		t.Fatal(err)
	}

	// Crash-like restart: committed data survives, same port.
	oldPID, port := c.PID(), c.Port
	if err := c.RestartImmediate(ctx); err != nil {
		t.Fatal(err)
	}
	if c.PID() == 0 || c.PID() == oldPID || c.Port != port {
		t.Fatalf("after restart: pid %d (old %d), port %d (old %d)", c.PID(), oldPID, c.Port, port)
	}
	if err := cc.Ping(ctx); err == nil {
		t.Error("old connection survived an immediate restart")
	}
	cc2 := connect(t, ctx, c.URL("copy-1"))
	var n int
	if err := cc2.QueryRow(ctx, "SELECT count(*) FROM t WHERE v = 'committed before crash'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row after crash: n=%d err=%v", n, err)
	}
	if got := show(t, ctx, cc2, "fsync"); got != "on" {
		t.Errorf("fsync after restart = %q", got)
	}

	pid := c.PID()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if c.PID() != 0 {
		t.Errorf("PID after Stop = %d", c.PID())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still exists after Stop: %v", pid, err)
	}
	for _, d := range []string{tempRoot, socketDir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Stop (err %v)", d, err)
		}
	}
}

func TestPersistentDataDir(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	base := t.TempDir() // 0700
	dataDir := filepath.Join(base, "project", ".ledgerd", "pgdata")
	if os.Geteuid() == 0 {
		// As root the server runs as postgres, which cannot enter a 0700
		// directory owned by root: Start must say so.
		_, err := Start(ctx, Options{DataDir: dataDir})
		if err == nil || !strings.Contains(err.Error(), "not traversable") {
			t.Fatalf("want a 'not traversable' error, got %v", err)
		}
		if _, err := os.Stat(filepath.Join(base, "project")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("failed Start created directories: %v", err)
		}
		for _, d := range []string{base, filepath.Dir(base)} { // t.TempDir makes both 0700
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}

	c, err := Start(ctx, Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if c.LogPath != filepath.Join(base, "project", ".ledgerd", "pgdata.log") {
		t.Errorf("LogPath = %s", c.LogPath)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE keep (v int); INSERT INTO keep VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// A second server on the same data dir is refused with a clear error.
	if _, err := Start(ctx, Options{DataDir: dataDir}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start on a live data dir: want 'already running', got %v", err)
	}

	// Simulate a killed previous run: SIGKILL the postmaster, leaving a
	// stale postmaster.pid. The next Start must recover.
	pid := c.PID()
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed a persistent data dir: %v", err)
	}

	var c2 *Cluster
	// Backends orphaned by the SIGKILL notice the postmaster's death and
	// exit on their own; until then PostgreSQL refuses to reuse the data dir
	// ("pre-existing shared memory block is still in use").
	for i := 0; ; i++ {
		c2, err = Start(ctx, Options{DataDir: dataDir})
		if err == nil || i == 20 || !strings.Contains(err.Error(), "shared memory block") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Stop() })
	conn = connect(t, ctx, c2.URL("postgres"))
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM keep").Scan(&v); err != nil || v != 42 {
		t.Fatalf("persisted row = %d, %v", v, err)
	}
	conn.Close(ctx)
	if err := c2.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after a clean Stop: %v", err)
	}
}

func TestStalePIDFileOfUnrelatedProcess(t *testing.T) {
	// A postmaster.pid naming a live process that is not a postmaster in
	// this data dir (pid reuse after a reboot) is stale and removed.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+dir+"\n0\n5432\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		t.Skip("no /proc")
	}
	if err := checkPostmasterPID(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale pid file not removed: %v", err)
	}
}

func TestVersionOrder(t *testing.T) {
	in := []string{"/x/postgresql/9.6/bin", "/x/postgresql/16/bin", "/x/postgresql/15/bin", "/x/postgresql@14/bin", "/x/postgresql/bin"}
	got := make([]string, len(in))
	copy(got, in)
	sortVersionsDesc(got)
	want := []string{"/x/postgresql/16/bin", "/x/postgresql/15/bin", "/x/postgresql@14/bin", "/x/postgresql/9.6/bin", "/x/postgresql/bin"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}
