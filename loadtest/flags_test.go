package loadtest

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlags_defaults(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(nil, env(map[string]string{"LEDGERD_ADMIN_KEY": "k"}), io.Discard, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		URL: defaultURL, Key: "k", Ledger: "loadtest-1700000000", Accounts: 10000, Asset: "USD", Initial: 1000000,
		Mode: modeClosed, Clients: 64, Duration: 10 * time.Second, Workload: workloadTransfer, Path: "/", BatchSize: 1000,
		ReadRatio: 0.2, ReferenceRatio: 0.5, RejectRatio: 0.005, Timeout: 10 * time.Second,
	}
	if c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestParseFlags_precedence(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"LEDGERD_URL": "http://env:1/", "LEDGERD_ADMIN_KEY": "envkey"})
	c, err := parseFlags(nil, e, io.Discard, time.Now())
	if err != nil || c.URL != "http://env:1" || c.Key != "envkey" {
		t.Errorf("env: %+v %v", c, err)
	}
	c, err = parseFlags([]string{"--url", "http://flag:2", "--key", "flagkey"}, e, io.Discard, time.Now())
	if err != nil || c.URL != "http://flag:2" || c.Key != "flagkey" {
		t.Errorf("flags over env: %+v %v", c, err)
	}
}

func TestParseFlags_openLoopClients(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"LEDGERD_ADMIN_KEY": "k"})
	c, err := parseFlags([]string{"--mode", "open", "--rate", "2000"}, e, io.Discard, time.Now())
	if err != nil || c.Clients != 512 {
		t.Errorf("open loop default in-flight cap: %d %v", c.Clients, err)
	}
	c, err = parseFlags([]string{"--mode", "open", "--rate", "2000", "--clients", "64"}, e, io.Discard, time.Now())
	if err != nil || c.Clients != 64 {
		t.Errorf("explicit --clients in open loop: %d %v", c.Clients, err)
	}
}

func TestParseFlags_invalid(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"LEDGERD_ADMIN_KEY": "k"})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "open"}, "--rate"},
		{[]string{"--mode", "sideways"}, "--mode"},
		{[]string{"--workload", "x"}, "--workload"},
		{[]string{"--zipf", "0.5"}, "--zipf"},
		{[]string{"--accounts", "1"}, "--accounts"},
		{[]string{"--asset", "usd"}, "--asset"},
		{[]string{"--ledger", "Bad Name"}, "--ledger"},
		{[]string{"--reject-ratio", "2"}, "--reject-ratio"},
		{[]string{"--batch-size", "0"}, "--batch-size"},
		{[]string{"--duration", "0"}, "--duration 0"},
		{[]string{"--workload", "twophase", "--requests", "1"}, "two-phase"},
		{[]string{"--url", "ftp://x"}, "--url"},
		{[]string{"--workload", "get", "--path", "hello"}, "--path"},
		{[]string{"--workload", "get", "--reuse"}, "--reuse"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--bogus"}, "bogus"},
	} {
		_, err := parseFlags(tt.args, e, io.Discard, time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
	if _, err := parseFlags(nil, env(nil), io.Discard, time.Now()); err == nil || !strings.Contains(err.Error(), "LEDGERD_ADMIN_KEY") {
		t.Errorf("missing key: %v", err)
	}
}

func TestParseFlags_getNeedsNoKey(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"--workload", "get", "--path", "/hello?x=1"}, env(nil), io.Discard, time.Now())
	if err != nil || c.Workload != workloadGet || c.Path != "/hello?x=1" || c.Key != "" {
		t.Errorf("get without a key: %+v %v", c, err)
	}
}
