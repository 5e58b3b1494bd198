package e2e

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// redisServer is a `redis-server` child on a free loopback port with its
// directory in the test's temporary directory and no persistence. Only the
// test that started it stops it, by its pid.
type redisServer struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server (the Debian package; scripts/ensure-deps.sh
// installs it) and waits until it accepts connections.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (scripts/ensure-deps.sh redis-server installs it): %v", err)
	}
	r := &redisServer{t: t, addr: freeAddr(t), dir: t.TempDir()}
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", r.dir, "--save", "",
		"--appendonly", "no", "--logfile", filepath.Join(r.dir, "redis.log"), "--daemonize", "no")
	r.cmd.SysProcAttr = childSysProcAttr()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			t.Fatalf("redis-server not listening on %s after 10 s: %v\n%s", r.addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is what REDIS_URL takes.
func (r *redisServer) URL() string { return "redis://" + r.addr + "/0" }

// stop ends the server by its pid (SIGTERM, then SIGKILL) and waits for it.
func (r *redisServer) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.t.Errorf("kill redis %d: %v", r.cmd.Process.Pid, err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

// hasLine reports whether the node's log has a line containing all of subs.
func (n *node) hasLine(subs ...string) bool {
	b, _ := os.ReadFile(n.logPath)
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}
