package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/telemetry"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ledgerd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func get(t *testing.T, c *http.Client, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeTLSAndDebugListener runs `ledgerd serve` with a certificate:
// the API answers over HTTPS (TLS 1.2 at least) and not over plain HTTP;
// the debug listener does not serve the command line (which holds a key
// given with --admin-key) and has timeouts (finding L2), which do not cut
// a CPU profile short. The key appears in no log line.
func TestServeTLSAndDebugListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	const key = "serve-test-admin-key-0123456789abcdef0123"
	s := start(t, []string{"serve", "--addr=127.0.0.1:0", "--debug-addr=127.0.0.1:0", "--admin-key=" + key},
		map[string]string{"DATABASE_URL": ledgertest.NewDatabase(t), "LEDGERD_TLS_CERT": certFile, "LEDGERD_TLS_KEY": keyFile})
	s.waitFor(t, s.stdout, `"msg":"serving"`)
	url := logLine(t, s.stdout, "serving")["url"].(string)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("serving at %s", url)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Get(url + "/v1/ledgers/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.ProtoMajor != 2 {
		t.Errorf("anonymous GET: %d, TLS %v, %s", resp.StatusCode, resp.TLS != nil, resp.Proto)
	}
	req, _ := http.NewRequest("POST", url+"/v1/ledgers", strings.NewReader(`{"name":"tls"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("create a ledger over HTTPS: %d", resp.StatusCode)
	}
	if code, _ := get(t, client, url+"/v1/ledgers/tls", key); code != 200 {
		t.Errorf("GET over HTTPS: %d", code)
	}

	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(url + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	if code, _ := get(t, &http.Client{Timeout: 10 * time.Second}, strings.Replace(url, "https", "http", 1)+"/healthz", ""); code != 400 {
		t.Errorf("plain HTTP to the TLS port: %d, want 400", code)
	}

	debug := "http://" + logLine(t, s.stdout, "debug listener")["addr"].(string)
	plain := &http.Client{Timeout: 30 * time.Second}
	if code, body := get(t, plain, debug+"/debug/pprof/cmdline", ""); code != 404 || strings.Contains(body, key) {
		t.Errorf("cmdline: %d %q", code, body)
	}
	if code, body := get(t, plain, debug+"/debug/pprof/", ""); code != 200 || strings.Contains(body, key) {
		t.Errorf("pprof index: %d", code)
	}
	if code, _ := get(t, plain, debug+"/debug/pprof/profile?seconds=1", ""); code != 200 {
		t.Errorf("1 s profile: %d", code)
	}
	srv := telemetry.DebugServer(nil)
	if srv.WriteTimeout == 0 || srv.ReadTimeout == 0 || srv.IdleTimeout == 0 || srv.ReadHeaderTimeout == 0 {
		t.Errorf("debug server timeouts: read %v, write %v, idle %v", srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}

	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.stdout.String()+s.stderr.String(), key) {
		t.Error("the admin key was logged")
	}
}

// TestServeAddressInUse: a port clash names the settings that move the
// listeners; a node without an admin key warns that nobody can create
// ledgers.
func TestServeAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := start(t, []string{"serve", "--addr=" + taken.Addr().String(), "--debug-addr=" + taken.Addr().String()},
		map[string]string{"DATABASE_URL": ledgertest.NewDatabase(t)})
	var runErr error
	select {
	case runErr = <-s.done:
		close(s.done)
	case <-time.After(time.Minute):
		t.Fatal("serve did not fail")
	}
	if runErr == nil || !strings.Contains(runErr.Error(), "--addr or LEDGERD_ADDR") || !strings.Contains(runErr.Error(), "in use") {
		t.Errorf("error: %v", runErr)
	}
	warn := logLine(t, s.stdout, "no admin key: nobody can create ledgers or API keys through this node; "+
		"set LEDGERD_ADMIN_KEY (at least 32 characters, e.g. from `openssl rand -hex 32`) unless keys were issued already")
	if warn["level"] != "WARN" {
		t.Errorf("admin key warning: %v", warn)
	}
}

// TestDebugAddressInUse: the debug listener's clash is a warning naming
// LEDGERD_DEBUG_ADDR, and the API runs without it.
func TestDebugAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := start(t, []string{"serve", "--addr=127.0.0.1:0", "--debug-addr=" + taken.Addr().String()},
		map[string]string{"DATABASE_URL": ledgertest.NewDatabase(t), "LEDGERD_ADMIN_KEY": ledgertest.AdminKey})
	s.waitFor(t, s.stdout, `"msg":"serving"`)
	w := logLine(t, s.stdout, "debug listener not started")
	if msg, _ := w["err"].(string); !strings.Contains(msg, "LEDGERD_DEBUG_ADDR") {
		t.Errorf("warning: %v", w)
	}
	if strings.Contains(s.stdout.String(), "no admin key") {
		t.Error("warned about a missing admin key that is set")
	}
}
