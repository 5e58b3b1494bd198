package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// buildLedgerd builds ./cmd/ledgerd into the test's temporary directory
// (with -race when the tests run with it) and returns the binary's path.
//
// Each test that runs `ledgerd serve` children builds it rather than one
// build per test binary: TestMain is ledgertest.Main, which exits without
// a hook where a shared binary could be removed, and the go build cache
// makes every build after the first a re-link of cached objects (well under
// a second), so nothing is left behind for that.
func buildLedgerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledgerd")
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "./cmd/ledgerd")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = ".." // the module root; tests run in the package directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// goTool is the go command of the toolchain running the tests: `go test`
// puts its GOROOT/bin first in the test's PATH.
func goTool() string { return "go" }

// freeAddr picks a free loopback port. A node keeps its address across
// restarts, so clients need not know it was restarted.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// node is a `ledgerd serve` child process. Only the test that started it
// signals it, always by its pid.
type node struct {
	t       *testing.T
	name    string
	bin     string
	env     []string
	addr    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been reaped
	// starts counts the starts of a worker (whose readiness is a log line).
	starts int
}

// startNode runs `ledgerd serve` against dbURL on a free loopback port and
// waits until it is ready. The node is stopped (SIGTERM, then SIGKILL) when
// the test ends, and its log is checked for data races. env adds
// variables (NAME=value) to the node's environment.
func startNode(t *testing.T, bin, name, dbURL string, env ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, bin: bin, addr: freeAddr(t), logPath: filepath.Join(t.TempDir(), name+".log")}
	n.env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"LEDGERD_ADDR="+n.addr,
		"LEDGERD_DEBUG_ADDR=",
		"LEDGERD_ADMIN_KEY="+ledgertest.AdminKey,
		"LEDGERD_ACCESS_LOG=false",
		"LEDGERD_RATE_LIMIT=0",
		"GORACE=halt_on_error=0",
	)
	n.env = append(n.env, env...)
	t.Cleanup(n.cleanup)
	n.start()
	return n
}

// debugAddr is the debug listener's address: off unless the test asked
// for one with LEDGERD_DEBUG_ADDR in env.
func (n *node) debugAddr() string {
	addr := ""
	for _, kv := range n.env {
		if v, ok := strings.CutPrefix(kv, "LEDGERD_DEBUG_ADDR="); ok {
			addr = v
		}
	}
	return addr
}

// URL is the node's base URL; it survives restarts.
func (n *node) URL() string { return "http://" + n.addr }

// start launches the process and waits (bounded) for GET /readyz to answer
// 200. Right after a kill the port may still be held for a moment, so a
// start that fails to listen is tried again.
func (n *node) start() {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := n.startOnce(deadline)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			n.t.Fatalf("%s: %v\n%s", n.name, err, n.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) startOnce(deadline time.Time) error {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// `--debug-addr=` as well as the empty variable: the node must not
	// take the shared default debug port (see the report on
	// LEDGERD_DEBUG_ADDR).
	cmd := exec.Command(n.bin, "serve", "--debug-addr="+n.debugAddr())
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		select {
		case <-done:
			return fmt.Errorf("exited during startup (%v): %s", cmd.ProcessState, n.lastLines(3))
		default:
		}
		resp, err := hc.Get(n.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			n.signal(syscall.SIGKILL)
			<-done
			return fmt.Errorf("not ready after 60 s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	if err := syscall.Kill(n.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		n.t.Errorf("%s: kill %d: %v", n.name, n.cmd.Process.Pid, err)
	}
}

// kill9 kills the process with SIGKILL (by pid) and waits until it is
// reaped: nothing of it runs afterwards.
func (n *node) kill9() {
	n.signal(syscall.SIGKILL)
	n.wait(30 * time.Second)
}

func (n *node) wait(d time.Duration) bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// cleanup stops the node gracefully (bounded), then checks its log.
func (n *node) cleanup() {
	n.signal(syscall.SIGTERM)
	if !n.wait(30 * time.Second) {
		n.t.Errorf("%s did not stop within 30 s of SIGTERM; killing it", n.name)
		n.kill9()
	}
	log, _ := os.ReadFile(n.logPath)
	if bytes.Contains(log, []byte("WARNING: DATA RACE")) {
		n.t.Errorf("%s: the race detector reported a data race:\n%s", n.name, n.raceReport(log))
	}
	if n.t.Failed() {
		n.t.Logf("%s log (tail):\n%s", n.name, n.logTail())
	}
}

func (n *node) raceReport(log []byte) string {
	i := bytes.Index(log, []byte("WARNING: DATA RACE"))
	b := log[i:]
	if len(b) > 8<<10 {
		b = b[:8<<10]
	}
	return string(b)
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 6<<10 {
		b = b[len(b)-6<<10:]
	}
	return string(b)
}

func (n *node) lastLines(k int) string {
	lines := strings.Split(strings.TrimSpace(n.logTail()), "\n")
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return strings.Join(lines, "\n")
}
