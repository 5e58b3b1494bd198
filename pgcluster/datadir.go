package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) - 1 is 107 on Linux, 103 on macOS).
const maxSocketPath = 103

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
