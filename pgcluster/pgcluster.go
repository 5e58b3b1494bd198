// Package pgcluster starts and stops a local PostgreSQL cluster from the
// server binaries installed on the machine (initdb and postgres). It is used by
// `ledgerd dev` (a persistent data directory) and by test harnesses (a
// throwaway cluster in a temporary directory).
//
// The cluster listens on 127.0.0.1 only and keeps fsync and
// synchronous_commit on. With Options.Password every connection, TCP or
// Unix socket, must give the `postgres` role's password (scram-sha-256);
// without it (throwaway test clusters) local connections are trusted. When the
// calling process runs as root, initdb and postgres (which refuse to run as
// root) are run as the `postgres` system user.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Timeouts; variables so that tests can shorten them.
var (
	readyTimeout    = 60 * time.Second // server accepting connections after start
	fastStopTimeout = 60 * time.Second // fast shutdown (checkpoint) before escalating
	quitTimeout     = 15 * time.Second // immediate shutdown before SIGKILL
)

// Options configures Start.
type Options struct {
	// DataDir is the cluster's data directory. It is created with initdb
	// when it holds no PG_VERSION. Empty means a new temporary directory
	// that Stop removes.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Log receives the output of initdb and the server. Nil means a log file
	// next to the data directory (<parent>/<base>.log), or postgres.log in
	// the temporary directory; see Cluster.LogPath.
	Log io.Writer
	// Password, when set, is the postgres role's password and the only way
	// in: it is set, and pg_hba.conf rewritten to require it, at every
	// start, so a cluster created without one (trust) is locked down too.
	// ASCII only. Empty leaves the cluster's authentication as initdb
	// made it: trust for local connections.
	Password string
	// Settings are extra postgresql.conf settings passed as -c name=value
	// flags; they override the package defaults (fsync=on,
	// synchronous_commit=on, max_connections=200).
	Settings map[string]string
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	BinDir    string // directory holding initdb and postgres
	DataDir   string // absolute data directory
	SocketDir string // unix_socket_directories (short, owned by the cluster)
	Port      int    // TCP port on 127.0.0.1
	LogPath   string // server log file when Options.Log was nil, else ""

	settings map[string]string
	password string              // Options.Password
	cred     *syscall.Credential // non-nil when running children as another user
	tempRoot string              // removed by Stop when non-empty

	logFile  *os.File  // owned log file (LogPath), nil with Options.Log
	userLog  io.Writer // Options.Log
	tail     *tailBuffer
	logStart int64 // size of logFile when the current server started

	mu      sync.Mutex
	proc    *serverProc
	stopped bool
}

// Start creates the cluster if needed, starts postgres and waits (at most 60
// s, or until ctx ends) until it accepts connections.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c = &Cluster{BinDir: bin, Port: o.Port, settings: map[string]string{}, password: o.Password}
	for k, v := range o.Settings {
		c.settings[k] = v
	}
	defer func() {
		if err != nil {
			c.cleanup()
			c = nil
		}
	}()
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			return c, err
		}
	}
	if err = c.prepareDirs(o); err != nil {
		return c, err
	}
	if err = c.openLog(o.Log); err != nil {
		return c, err
	}
	if err = c.initdbIfNeeded(ctx); err != nil {
		return c, err
	}
	if err = checkPostmasterPID(c.DataDir); err != nil {
		return c, err
	}
	if c.password != "" {
		if err = c.requirePassword(ctx); err != nil {
			return c, err
		}
	}
	autoPort := c.Port == 0
	for attempt := 1; ; attempt++ {
		if autoPort {
			if c.Port, err = freePort(); err != nil {
				return c, err
			}
		}
		err = c.startServer(ctx)
		if err == nil {
			return c, nil
		}
		// Another process may grab a port between freePort and the bind.
		if !autoPort || attempt == 3 || !strings.Contains(err.Error(), "could not bind") {
			return c, err
		}
	}
}

// URL returns a connection URL for database db as the postgres superuser
// (with the password, when the cluster has one).
func (c *Cluster) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", c.Port),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	if c.password != "" {
		u.User = url.UserPassword("postgres", c.password)
	}
	return u.String()
}

// PID returns the postmaster's process id, or 0 when it is not running.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return 0
	}
	return c.proc.cmd.Process.Pid
}

// CreateDatabase creates database name, as a copy of template when template is
// not empty. A database that already exists is not an error. A template that
// is briefly in use by another session is retried for a few seconds.
func (c *Cluster) CreateDatabase(ctx context.Context, name, template string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.Background())
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "42P04": // duplicate_database
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "55006" && time.Now().Before(deadline): // object_in_use
			select {
			case <-ctx.Done():
				return fmt.Errorf("pgcluster: create database %s: %w", name, err)
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return fmt.Errorf("pgcluster: create database %s: %w", name, err)
		}
	}
}

// Stop shuts the server down (fast shutdown: SIGINT to the postmaster), waits
// for it (escalating to immediate shutdown and SIGKILL when it takes too
// long), and removes the socket directory and, for a temporary cluster, the
// whole temporary directory. Calling Stop again is a no-op.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var err error
	if c.proc != nil {
		err = c.proc.shutdown(syscall.SIGINT, fastStopTimeout)
	}
	if cerr := c.cleanup(); err == nil {
		err = cerr
	}
	return err
}

// Remove deletes a stopped cluster's data directory and its log file
// (<parent>/<base>.log, see Options.Log). It refuses while a postmaster
// runs in the directory.
func Remove(dataDir string) error {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("pgcluster: data dir: %w", err)
	}
	if err := checkPostmasterPID(abs); err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	logPath := filepath.Join(filepath.Dir(abs), filepath.Base(abs)+".log")
	if err := os.Remove(logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// RestartImmediate simulates a crash: it sends SIGQUIT to the postmaster
// (immediate shutdown, no checkpoint, like `pg_ctl restart -m immediate`),
// waits for it to exit and starts it again on the same port and data
// directory; the server then runs crash recovery. It returns once the server
// accepts connections again.
func (c *Cluster) RestartImmediate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	if c.proc != nil {
		if err := c.proc.shutdown(syscall.SIGQUIT, quitTimeout); err != nil {
			return err
		}
	}
	return c.startServer(ctx)
}

// cleanup removes what the cluster created besides a persistent data dir.
func (c *Cluster) cleanup() error {
	var errs []error
	if c.logFile != nil {
		errs = append(errs, c.logFile.Close())
		c.logFile = nil
	}
	if c.SocketDir != "" {
		errs = append(errs, os.RemoveAll(c.SocketDir))
	}
	if c.tempRoot != "" {
		errs = append(errs, os.RemoveAll(c.tempRoot))
		c.tempRoot = ""
	}
	return errors.Join(errs...)
}
