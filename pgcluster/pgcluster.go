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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
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

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) - 1 is 107 on Linux, 103 on macOS).
const maxSocketPath = 103

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

type serverProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, valid after done is closed
}

func (p *serverProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
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

// shutdown signals the postmaster and waits up to timeout for it to exit,
// then escalates: SIGQUIT (immediate shutdown), then SIGKILL. (The
// postmaster's children run in their own sessions and exit by themselves
// once the postmaster is gone.)
func (p *serverProc) shutdown(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	steps := []struct {
		sig     syscall.Signal
		timeout time.Duration
	}{{sig, timeout}, {syscall.SIGQUIT, quitTimeout}, {syscall.SIGKILL, 5 * time.Second}}
	if sig == syscall.SIGQUIT {
		steps = steps[1:]
		steps[0].timeout = timeout
	}
	for _, s := range steps {
		target := pid
		if s.sig == syscall.SIGKILL {
			target = -pid // its process group (Setpgid)
		}
		if err := syscall.Kill(target, s.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("pgcluster: signal postmaster %d: %w", pid, err)
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(s.timeout):
		}
	}
	return fmt.Errorf("pgcluster: postmaster %d did not exit", pid)
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

// prepareDirs sets DataDir and SocketDir, creating directories as needed
// with the right owner and permissions.
func (c *Cluster) prepareDirs(o Options) error {
	if o.DataDir == "" {
		root, err := os.MkdirTemp("", "pgcluster-")
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		c.tempRoot = root
		if c.cred != nil {
			// MkdirTemp makes it 0700; the postgres user must traverse it.
			if err := os.Chmod(root, 0o755); err != nil {
				return fmt.Errorf("pgcluster: %w", err)
			}
		}
		c.DataDir = filepath.Join(root, "data")
	} else {
		abs, err := filepath.Abs(o.DataDir)
		if err != nil {
			return fmt.Errorf("pgcluster: data dir: %w", err)
		}
		c.DataDir = abs
	}
	if c.cred != nil {
		// Before creating anything: directories that do not exist yet are
		// created with mode 0755 below.
		if err := checkTraversable(filepath.Dir(c.DataDir), c.cred); err != nil {
			return err
		}
	}
	if err := mkdirParents(filepath.Dir(c.DataDir), c.cred != nil); err != nil {
		return err
	}
	if err := os.Mkdir(c.DataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgcluster: create data dir: %w", err)
	}
	if c.cred != nil {
		if err := chownTree(c.DataDir, c.cred); err != nil {
			return err
		}
	}
	// postgres refuses a data dir with group/other permissions beyond 0750.
	if err := os.Chmod(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}

	sock, err := os.MkdirTemp(socketBase(), "pgsock-")
	if err != nil {
		return fmt.Errorf("pgcluster: socket dir: %w", err)
	}
	c.SocketDir = sock
	if len(sock)+len("/.s.PGSQL.65535.lock") > maxSocketPath {
		return fmt.Errorf("pgcluster: socket dir %s is too long for a unix socket path", sock)
	}
	if c.cred != nil {
		if err := checkTraversable(filepath.Dir(sock), c.cred); err != nil {
			return err
		}
		if err := os.Chown(sock, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// socketBase picks a short directory for the socket dir: $TMPDIR when it is
// short (macOS's per-user TMPDIR is ~50 bytes), else /tmp.
func socketBase() string {
	if t := os.TempDir(); len(t) <= 40 {
		return t
	}
	return "/tmp"
}

// mkdirParents creates dir and its missing parents. As root the created
// directories get mode 0755 regardless of the umask, so that the postgres
// user can traverse them.
func mkdirParents(dir string, forceMode bool) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirParents(filepath.Dir(dir), forceMode); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if forceMode {
		if err := os.Chmod(dir, 0o755); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// checkTraversable verifies that every existing directory from / down to dir
// can be searched (x permission) by the user in cred. It stops at the first
// component that does not exist.
func checkTraversable(dir string, cred *syscall.Credential) error {
	groups := map[uint32]bool{cred.Gid: true}
	for _, g := range cred.Groups {
		groups[g] = true
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		perm := fi.Mode().Perm()
		var ok2 bool
		switch {
		case uint32(st.Uid) == cred.Uid:
			ok2 = perm&0o100 != 0
		case groups[uint32(st.Gid)]:
			ok2 = perm&0o010 != 0
		default:
			ok2 = perm&0o001 != 0
		}
		if !ok2 {
			return fmt.Errorf("pgcluster: directory %s (mode %v) is not traversable by the postgres user (uid %d), "+
				"which runs the server because this process runs as root; make it accessible (chmod o+x %s) "+
				"or choose a data directory elsewhere", d, perm, cred.Uid, d)
		}
	}
	return nil
}

// chownTree gives dir and everything in it to the postgres user when dir is
// not already owned by it.
func chownTree(dir string, cred *syscall.Credential) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint32(st.Uid) == cred.Uid && uint32(st.Gid) == cred.Gid {
		return nil
	}
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("pgcluster: chown data dir: %w", err)
	}
	return nil
}

// postgresCredential looks up the postgres system user that runs initdb
// and postgres when this process is root.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, and PostgreSQL refuses to run as root, "+
			"but there is no postgres system user to run it as (install the postgresql package or "+
			"create the user, e.g. useradd --system postgres), or run as an ordinary user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgcluster: postgres user has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

// openLog sets up where initdb's and the server's output goes.
func (c *Cluster) openLog(w io.Writer) error {
	c.tail = &tailBuffer{max: 16 << 10}
	if w != nil {
		c.userLog = w
		return nil
	}
	if c.tempRoot != "" {
		c.LogPath = filepath.Join(c.tempRoot, "postgres.log")
	} else {
		c.LogPath = filepath.Join(filepath.Dir(c.DataDir), filepath.Base(c.DataDir)+".log")
	}
	f, err := os.OpenFile(c.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: log file: %w", err)
	}
	c.logFile = f
	if c.cred != nil {
		if err := f.Chown(int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: log file: %w", err)
		}
	}
	return nil
}

// outputWriter is what child processes write to. With an owned log file the
// file itself is handed to the child (no pipe, so a dying parent does not
// break the server's logging); otherwise output is copied to Options.Log and
// the tail buffer.
func (c *Cluster) outputWriter() io.Writer {
	if c.logFile != nil {
		return c.logFile
	}
	return io.MultiWriter(c.userLog, c.tail)
}

// recentOutput returns the server output since the current start, for error
// messages.
func (c *Cluster) recentOutput() string {
	if c.logFile == nil {
		return c.tail.String()
	}
	f, err := os.Open(c.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := c.logStart
	if fi.Size()-from > 16<<10 {
		from = fi.Size() - 16<<10
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	return string(b)
}

func (c *Cluster) markLogStart() {
	c.tail.Reset()
	if c.logFile != nil {
		if fi, err := c.logFile.Stat(); err == nil {
			c.logStart = fi.Size()
		}
	}
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Dir = "/" // the postgres user may not be able to enter our cwd
	cmd.Env = childEnv()
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	// If we die, the postmaster does an immediate shutdown (and takes its
	// backends with it) instead of lingering.
	setParentDeathSignal(attr, syscall.SIGQUIT)
	cmd.SysProcAttr = attr
	return cmd
}

// childEnv is our environment without the libpq/PG* variables that could
// change how initdb or postgres behave, with LC_MESSAGES=C so that error
// messages are greppable.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_MESSAGES=C", "LANG=C")
}

// initdbIfNeeded creates the cluster when the data dir holds no PG_VERSION.
func (c *Cluster) initdbIfNeeded(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); err == nil {
		return nil
	}
	var errs []error
	for _, locale := range []string{"C.UTF-8", "C"} {
		c.markLogStart()
		var out bytes.Buffer
		w := io.MultiWriter(c.outputWriter(), &out)
		cmd := c.command(ctx, "initdb", "-D", c.DataDir, "-A", "trust", "-U", "postgres",
			"-E", "UTF8", "--locale="+locale)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("initdb --locale=%s: %w\n%s", locale, err, strings.TrimSpace(out.String())))
			if ctx.Err() != nil {
				break
			}
			// initdb removes what it created in the data dir on failure.
			continue
		}
		return nil
	}
	return fmt.Errorf("pgcluster: %w", errors.Join(errs...))
}

// checkPostmasterPID handles a postmaster.pid left in the data dir. A dead
// pid is left for postgres, which removes the stale file itself. A live pid
// that is not a postmaster running in this data dir (a pid reused after a
// reboot or container restart) makes the file stale, so it is removed. A live
// postmaster in this data dir is an error.
func checkPostmasterPID(dataDir string) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		// Empty or garbled (crash while writing it): postgres would refuse
		// to start until someone removes it.
		return removeStale(pidFile)
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if running, known := postmasterFor(pid, dataDir); known && !running {
		return removeStale(pidFile)
	}
	port := ""
	if len(lines) > 3 {
		port = strings.TrimSpace(lines[3])
	}
	return fmt.Errorf("pgcluster: PostgreSQL is already running on data directory %s (postmaster pid %d, port %s); "+
		"stop it first (kill -INT %d) or use another data directory", dataDir, pid, port, pid)
}

func removeStale(pidFile string) error {
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgcluster: remove stale %s: %w", pidFile, err)
	}
	return nil
}

// postmasterFor reports whether process pid runs with dataDir as its working
// directory (a postmaster chdirs into its data dir). known is false when
// that cannot be determined (no /proc, no permission).
func postmasterFor(pid int, dataDir string) (running, known bool) {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat("/proc/self"); serr == nil {
				return false, true // process gone meanwhile
			}
		}
		return false, false
	}
	want := dataDir
	if r, err := filepath.EvalSymlinks(dataDir); err == nil {
		want = r
	}
	return cwd == want || cwd == dataDir, true
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverArgs builds the postgres command line.
func (c *Cluster) serverArgs() []string {
	set := map[string]string{
		"fsync":              "on",
		"synchronous_commit": "on",
		"full_page_writes":   "on",
		"max_connections":    "200",
	}
	for k, v := range c.settings {
		set[k] = v
	}
	// Ours, not overridable: where the server listens.
	set["listen_addresses"] = "127.0.0.1"
	set["port"] = strconv.Itoa(c.Port)
	set["unix_socket_directories"] = c.SocketDir
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", c.DataDir}
	for _, k := range keys {
		args = append(args, "-c", k+"="+set[k])
	}
	return args
}

// startServer starts postgres and waits until it accepts connections. On
// failure the process is stopped and the error carries its recent output.
// c.mu must be held, or c not yet shared.
func (c *Cluster) startServer(ctx context.Context) error {
	c.markLogStart()
	// Not bound to ctx: the server outlives the call that starts it.
	cmd := c.command(context.Background(), "postgres", c.serverArgs()...)
	w := c.outputWriter()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second // bound output copying when Options.Log is a pipe
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.proc = p

	if err := c.waitReady(ctx, p); err != nil {
		_ = p.shutdown(syscall.SIGQUIT, quitTimeout)
		return fmt.Errorf("%w\n--- postgres output ---\n%s", err, strings.TrimSpace(c.recentOutput()))
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, p *serverProc) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("pgcluster: postgres exited during startup: %v", p.err)
		}
		if starting, status := c.pidFileStatus(p.cmd.Process.Pid); starting {
			lastErr = fmt.Errorf("postmaster status %q", status)
		} else {
			attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			conn, err := pgx.Connect(attemptCtx, c.URL("postgres"))
			if err == nil {
				err = conn.Ping(attemptCtx)
				conn.Close(context.Background())
			}
			cancel()
			if err == nil {
				return nil
			}
			lastErr = err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pgcluster: waiting for postgres: %w", ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgcluster: postgres not accepting connections after %v: %v", readyTimeout, lastErr)
		}
		select {
		case <-ctx.Done():
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pidFileStatus reads the status line of postmaster.pid (line 8, written
// since PostgreSQL 10: "starting", "ready", "stopping", …) and reports
// whether our postmaster (pid) says it is not ready yet, so that readiness
// probes do not fill the log with "the database system is starting up".
// An unreadable or older-format file gives false: probe by connecting.
func (c *Cluster) pidFileStatus(pid int) (starting bool, status string) {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return false, ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return false, ""
	}
	status = strings.TrimSpace(lines[7])
	return status != "" && status != "ready", status
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Reset() {
	t.mu.Lock()
	t.buf = t.buf[:0]
	t.mu.Unlock()
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
