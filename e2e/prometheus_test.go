package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// prometheusTools returns the paths of Debian's promtool and prometheus,
// installing the package (scripts/ensure-prometheus.sh) when they are
// missing. The test is skipped only on a machine that cannot install
// packages (no apt-get, or neither root nor sudo) and not under CI.
func prometheusTools(t *testing.T) (promtool, prometheus string) {
	t.Helper()
	promtoolOnce.Do(func() {
		if !havePrometheus() {
			cmd := exec.Command("../scripts/ensure-prometheus.sh")
			out, err := cmd.CombinedOutput()
			if err != nil {
				promtoolErr = fmt.Errorf("scripts/ensure-prometheus.sh: %v\n%s", err, out)
			}
		}
		if !havePrometheus() && promtoolErr == nil {
			promtoolErr = fmt.Errorf("promtool or prometheus still missing after scripts/ensure-prometheus.sh")
		}
	})
	if promtoolErr != nil {
		if os.Getenv("CI") != "" || canInstallPackages() {
			t.Fatal(promtoolErr)
		}
		t.Skip(promtoolErr)
	}
	promtool, _ = exec.LookPath("promtool")
	prometheus, _ = exec.LookPath("prometheus")
	return promtool, prometheus
}

var (
	promtoolOnce sync.Once
	promtoolErr  error
)

// canInstallPackages: apt-get exists and we are root or have sudo. Only
// without it may the Prometheus tests be skipped (and never under CI).
func canInstallPackages() bool {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return false
	}
	if os.Geteuid() == 0 {
		return true
	}
	_, err := exec.LookPath("sudo")
	return err == nil
}

func havePrometheus() bool {
	_, e1 := exec.LookPath("promtool")
	_, e2 := exec.LookPath("prometheus")
	return e1 == nil && e2 == nil
}

// promServer is a Prometheus server started by a test, on loopback, with
// its data in the test's temporary directory; it is stopped by its pid.
type promServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startPrometheus runs prometheus scraping targets (host:port of /metrics)
// every second and evaluating ruleFiles every second.
func startPrometheus(t *testing.T, bin string, targets []string, ruleFiles ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
	if len(ruleFiles) > 0 {
		cfg.WriteString("rule_files:\n")
		for _, f := range ruleFiles {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&cfg, "  - %q\n", abs)
		}
	}
	cfg.WriteString("scrape_configs:\n  - job_name: ledgerd\n    static_configs:\n      - targets:\n")
	for _, tg := range targets {
		fmt.Fprintf(&cfg, "          - %q\n", tg)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--enable-feature=native-histograms,exemplar-storage")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &promServer{url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", tail(b, 3000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// promSample is one series of an instant query's vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

// query runs an instant query; an error is a query Prometheus refused.
func (p *promServer) query(q string) ([]promSample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %s", err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, nil
	}
	var out []promSample
	err = json.Unmarshal(r.Data.Result, &out)
	return out, err
}

// waitFor polls q until ok accepts its result.
func (p *promServer) waitFor(t *testing.T, q string, d time.Duration, ok func([]promSample) bool) []promSample {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		res, err := p.query(q)
		if err != nil {
			t.Fatal(err)
		}
		if ok(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", q, res)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promtool runs promtool with args (and stdin), failing the test on a
// non-zero exit.
func runPromtool(t *testing.T, promtool string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules: the rules pass promtool's checks, and its unit tests
// show every alert firing and staying silent.
func TestAlertRules(t *testing.T) {
	promtool, _ := prometheusTools(t)
	runPromtool(t, promtool, nil, "check", "rules", "../deploy/prometheus/alerts.yml")
	out := runPromtool(t, promtool, nil, "test", "rules", "../deploy/prometheus/alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}
}

// TestAlertRulesAllTested: every alert of alerts.yml has a runbook
// section, and a unit test where it fires and one where it does not.
func TestAlertRulesAllTested(t *testing.T) {
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("../deploy/prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbooks, err := os.ReadFile("../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	lines := strings.Split(string(tests), "\n")
	for i, l := range lines {
		name, ok := strings.CutPrefix(strings.TrimSpace(l), "alertname: ")
		if !ok || i+1 >= len(lines) {
			continue
		}
		if strings.TrimSpace(lines[i+1]) == "exp_alerts: []" {
			silent[name] = true
		} else {
			fires[name] = true
		}
	}
	var alerts []string
	for _, l := range strings.Split(string(rules), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(l), "- alert: "); ok {
			alerts = append(alerts, name)
		}
	}
	if len(alerts) < 10 {
		t.Fatalf("only %d alerts found: %v", len(alerts), alerts)
	}
	for _, a := range alerts {
		if !fires[a] || !silent[a] {
			t.Errorf("%s: a firing test %v, a silent test %v", a, fires[a], silent[a])
		}
		anchor := "docs/runbooks.md#" + strings.ToLower(a)
		if !strings.Contains(string(rules), anchor) {
			t.Errorf("%s: no runbook_url to %s", a, anchor)
		}
		if !strings.Contains(string(runbooks), "\n## "+a+"\n") {
			t.Errorf("%s: no section in docs/runbooks.md", a)
		}
	}
}
