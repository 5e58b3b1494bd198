package webhook

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docBlocks returns the fenced code blocks of docs/webhooks.md in the given
// language.
func docBlocks(t *testing.T, lang string) []string {
	b, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, part := range strings.Split(string(b), "```"+lang+"\n")[1:] {
		end := strings.Index(part, "```")
		if end < 0 {
			t.Fatalf("unterminated %s block", lang)
		}
		out = append(out, part[:end])
	}
	return out
}

var shellVar = regexp.MustCompile(`(?m)^(secret|id|ts|body)='?(.*?)'?$`)

// TestDocsShellExample: the example in docs/webhooks.md is a real
// signature, and the openssl lines it shows, run as printed, reproduce it.
func TestDocsShellExample(t *testing.T) {
	t.Parallel()
	blocks := docBlocks(t, "sh")
	if len(blocks) < 2 || !strings.Contains(blocks[1], "openssl dgst") {
		t.Fatalf("expected the curl block then the openssl block, got %d sh blocks", len(blocks))
	}
	vars := map[string]string{}
	for _, m := range shellVar.FindAllStringSubmatch(blocks[0], -1) {
		vars[m[1]] = m[2]
	}
	ts, err := strconv.ParseInt(vars["ts"], 10, 64)
	if err != nil || len(vars) != 4 {
		t.Fatalf("example variables %v", vars)
	}
	ks, err := ParseKeys(vars["secret"])
	if err != nil {
		t.Fatal(err)
	}
	sig := ks.Sign(vars["id"], ts, []byte(vars["body"]))
	if !strings.Contains(blocks[0], "webhook-signature: "+sig+"'") {
		t.Fatalf("curl example does not carry the signature %s", sig)
	}
	if !strings.Contains(blocks[1], "# "+strings.TrimPrefix(sig, "v1,")) {
		t.Fatalf("openssl example does not show %s", sig)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	// The variable lines of the first block, then the openssl block as is.
	var script strings.Builder
	for _, m := range shellVar.FindAllString(blocks[0], -1) {
		script.WriteString(m + "\n")
	}
	script.WriteString(blocks[1])
	out, err := exec.Command("sh", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := "v1," + strings.TrimSpace(string(out)); got != sig {
		t.Fatalf("the documented openssl lines print %s, Sign makes %s", got, sig)
	}
}

// TestDocsGoReceiver builds the receiver shown in docs/webhooks.md and
// delivers to it: it accepts a real delivery and refuses one signed with
// another secret.
func TestDocsGoReceiver(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a program")
	}
	blocks := docBlocks(t, "go")
	if len(blocks) != 1 {
		t.Fatalf("%d go blocks", len(blocks))
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(blocks[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "receiver")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goCmd, "build", "-o", bin, src)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the documented receiver does not build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := NewSecret()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ADDR="+addr, "WEBHOOK_SECRET="+secret)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr + "/ledgerd"
	c := loopbackClient(2 * time.Second)
	var out Outcome
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out = Deliver(t.Context(), c, endpoint(t, url, secret), testEvent()); out.Err != "connection refused" {
			break
		}
	}
	if out.Result != Delivered || out.StatusCode != http.StatusNoContent {
		t.Fatalf("documented receiver: %+v", out)
	}
	// During a rotation it still accepts (its secret's signature is second).
	if out := Deliver(t.Context(), c, endpoint(t, url, NewSecret(), secret), testEvent()); out.Result != Delivered {
		t.Fatalf("documented receiver during a rotation: %+v", out)
	}
	if out := Deliver(t.Context(), c, endpoint(t, url, NewSecret()), testEvent()); out.Result != Retry || out.StatusCode != http.StatusBadRequest {
		t.Fatalf("documented receiver with a wrong secret: %+v", out)
	}
}
