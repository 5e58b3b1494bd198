package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// haproxy is an `haproxy` child (the Debian package) balancing round-robin
// over API nodes with health checks on /readyz, as scripts/topology.sh
// configures it; stopped by its pid.
type haproxy struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func startHAProxy(t *testing.T, nodes []*node) *haproxy {
	t.Helper()
	h := &haproxy{addr: freeAddr(t)}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    retry-on conn-failure
    option redispatch
frontend api
    bind %s
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms fall 2 rise 2
`, h.addr)
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server n%d %s check\n", i, n.addr)
	}
	return runHAProxy(t, h.addr, b.String())
}

// runHAProxy runs haproxy with the configuration text cfgText, which binds
// addr, and waits until it serves /readyz.
func runHAProxy(t *testing.T, addr, cfgText string) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not found (scripts/ensure-deps.sh haproxy installs it): %v", err)
	}
	h := &haproxy{addr: addr}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-db", "-f", cfg)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.SysProcAttr = childSysProcAttr()
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.done = make(chan struct{})
	go func() { _ = h.cmd.Wait(); logf.Close(); close(h.done) }()
	t.Cleanup(func() {
		if err := syscall.Kill(h.cmd.Process.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill haproxy: %v", err)
		}
		<-h.done
	})
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get(h.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
			t.Fatalf("haproxy not serving after 15 s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *haproxy) URL() string { return "http://" + h.addr }

// throughBalancerInDoubt: besides no answer and 503, the balancer's own 502
// and 504 (it lost the node mid-request) leave the outcome open.
func throughBalancerInDoubt(r *reply, err error) bool {
	return err != nil || r.status == http.StatusServiceUnavailable ||
		r.status == http.StatusBadGateway || r.status == http.StatusGatewayTimeout
}

// TestTopologyRollingRestart runs the bank workload through HAProxy over
// three `ledgerd serve` nodes while one node is killed with SIGKILL and
// restarted and another is stopped with SIGTERM (it drains: exit status 0)
// and restarted. Clients retry every request without a definite answer
// with its key and body. Afterwards: the ledger's invariants hold, every
// acknowledged transaction is stored exactly once, nothing is stored that
// no client was told of, and during the SIGTERM restart no request was
// left without a definite answer.
func TestTopologyRollingRestart(t *testing.T) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	env := []string{"LEDGERD_DRAIN_DELAY=1s", "LEDGERD_SHUTDOWN_TIMEOUT=20s"}
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, bin, fmt.Sprintf("node%d", i+1), db, env...))
	}
	lb := startHAProxy(t, nodes)
	fx := newFixture(t, lb.URL(), "topology", loadAccounts, 1_000_000_000)
	c := &client{base: lb.URL(), key: fx.writeKey, hc: newHTTPClient(t)}
	ef := &errorf{t: t}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var (
		mu        sync.Mutex
		sent      []*sentRequest
		stop      atomic.Bool
		drainTime atomic.Bool // a node is draining or restarting after SIGTERM
		drainLost atomic.Int64
		counts    sync.Map // status → *atomic.Int64
	)
	count := func(r *reply, err error) {
		k := "transport error"
		if err == nil {
			k = fmt.Sprint(r.status)
		}
		v, _ := counts.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if throughBalancerInDoubt(r, err) && drainTime.Load() {
			drainLost.Add(1)
		}
	}
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !stop.Load() {
				src, dst := fx.pair(rng)
				amount := 1 + rng.Int64N(100)
				if rng.IntN(100) < 3 {
					amount = overdraft
				}
				s := &sentRequest{key: newKey("topokey"), ref: newKey("toporef"),
					tx: txRequest{Postings: []postingJSON{{Source: src, Destination: dst, Amount: amount, Asset: fx.asset}}}}
				s.tx.Reference = s.ref
				s.body = mustJSONNoFail(s.tx)
				mu.Lock()
				sent = append(sent, s)
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				var r *reply
				var err error
				for attempt := 0; ; attempt++ {
					r, err = c.do(ctx, http.MethodPost, txPath(fx.ledger), s.body, s.key)
					count(r, err)
					if !throughBalancerInDoubt(r, err) || ctx.Err() != nil {
						break
					}
					s.inDoubt = true
					time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
				}
				cancel()
				if throughBalancerInDoubt(r, err) {
					ef.Errorf("%s: no definite answer within 60 s: %v %v", s.key, r, err)
					return
				}
				if err := s.settle(r); err != nil {
					ef.Errorf("%s: %v", s.key, err)
					return
				}
			}
		}()
	}

	time.Sleep(2 * time.Second)
	t.Log("kill -9 node1")
	nodes[0].kill9()
	time.Sleep(time.Second)
	nodes[0].start()
	time.Sleep(2 * time.Second)

	t.Log("SIGTERM node2")
	drainTime.Store(true)
	nodes[1].signal(syscall.SIGTERM)
	// During the drain delay the node still answers, but not ready.
	notReady := false
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end) && !notReady; {
		if resp, err := hc.Get(nodes[1].URL() + "/readyz"); err == nil {
			resp.Body.Close()
			notReady = resp.StatusCode == http.StatusServiceUnavailable
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !notReady {
		t.Error("node2's /readyz did not answer 503 while it drained")
	}
	if !nodes[1].wait(30 * time.Second) {
		t.Fatal("node2 did not exit within 30 s of SIGTERM")
	}
	if code := nodes[1].cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("node2 exited with status %d after SIGTERM, want 0", code)
	}
	if !nodes[1].hasLine(`"msg":"draining"`) || !nodes[1].hasLine(`"msg":"stopped"`) {
		t.Error("node2's log does not show the drain")
	}
	nodes[1].start()
	time.Sleep(time.Second) // HAProxy's rise: 2 checks
	drainTime.Store(false)
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	var parts []string
	counts.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("answers: %s", strings.Join(parts, ", "))
	if n := drainLost.Load(); n > 0 {
		t.Errorf("%d requests without a definite answer while node2 drained and restarted: a SIGTERM must lose nothing", n)
	}
	for _, k := range []string{"500", "501", "505"} {
		if v, ok := counts.Load(k); ok {
			t.Errorf("%d answers %s", v.(*atomic.Int64).Load(), k)
		}
	}

	var ok, doubted int64
	byRef := map[string]*sentRequest{}
	for _, s := range sent {
		byRef[s.ref] = s
		if s.succeeded() {
			ok++
		}
		if s.inDoubt {
			doubted++
		}
	}
	t.Logf("%d requests, %d acknowledged, %d retried after an open outcome", len(sent), ok, doubted)
	if ok < 100 {
		t.Fatalf("only %d transfers acknowledged", ok)
	}
	st := checkInvariants(t, lb.URL(), fx.ledger, fx.setupTx+ok)
	for i := range st.Txs {
		tx := &st.Txs[i]
		if tx.Sequence <= fx.setupTx {
			continue
		}
		s := byRef[tx.ref()]
		switch {
		case s == nil:
			ef.Errorf("stored transaction %d (%s) was never sent", tx.Sequence, tx.ID)
		case !s.succeeded() || s.txID != tx.ID:
			ef.Errorf("stored transaction %d (%s) belongs to %s, which was told %d %q", tx.Sequence, tx.ID, s.key, s.status, s.txID)
		}
	}
	for _, s := range sent {
		if s.succeeded() && st.ByRef[s.ref] == nil {
			ef.Errorf("acknowledged %s (%s) is not stored", s.key, s.txID)
		}
		if !s.succeeded() && st.ByRef[s.ref] != nil {
			ef.Errorf("%s was refused (%s) but is stored", s.key, s.code)
		}
	}
}
