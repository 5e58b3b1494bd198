package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

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
