package main

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestSecretsNotPrinted: --help, and the usage printed after a mistyped
// flag, show that a secret is set but never its value (finding M3).
func TestSecretsNotPrinted(t *testing.T) {
	const (
		dbPassword      = "db-pass-4b1c9e"
		replicaPassword = "replica-pass-77aa21"
		adminKey        = "admin-key-secret-0123456789abcdef0123456789"
	)
	vars := map[string]string{
		"DATABASE_URL":         "postgres://ledgerd:" + dbPassword + "@db.internal:5432/ledgerd?sslmode=require",
		"DATABASE_REPLICA_URL": "host=replica user=ledgerd password='" + replicaPassword + "' dbname=ledgerd",
		"LEDGERD_ADMIN_KEY":    adminKey,
	}
	for _, args := range [][]string{
		{"serve", "--help"}, {"serve", "--adress=:1"}, {"serve", "-h"},
		{"dev", "--help"}, {"dev", "--no-such-flag"},
		{"migrate", "--help"}, {"migrate", "--databse-url=x"},
	} {
		var stdout, stderr strings.Builder
		err := run(context.Background(), args, env(vars), &stdout, &stderr)
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		out := stdout.String() + stderr.String() + err.Error()
		for _, secret := range []string{dbPassword, replicaPassword, adminKey} {
			if strings.Contains(out, secret) {
				t.Errorf("%v prints a secret:\n%s", args, out)
			}
		}
		if !strings.Contains(out, "postgres://ledgerd:xxxxx@db.internal:5432/ledgerd") {
			t.Errorf("%v: the database URL is not shown masked:\n%s", args, out)
		}
		if args[0] == "serve" {
			if !strings.Contains(out, "(default (set))") || !strings.Contains(out, "password=xxxxx") {
				t.Errorf("%v: the admin key or replica URL is not shown as set:\n%s", args, out)
			}
		}
		if strings.HasSuffix(args[1], "help") && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestSecretFlagsTakeValues: a secret is read from its variable and a flag
// overrides it, like any other setting.
func TestSecretFlagsTakeValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "from-env-0123456789abcdef0123456789"},
		{[]string{"--admin-key", "from-flag-0123456789abcdef0123456789"}, "from-flag-0123456789abcdef0123456789"},
		{[]string{"--admin-key="}, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var c config
		c.bindServe(&binder{fs: fs, lookupEnv: env(map[string]string{
			"LEDGERD_ADMIN_KEY": "from-env-0123456789abcdef0123456789", "DATABASE_URL": "postgres://u:p@h/d"})}, true)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if c.AdminKey != tc.want || c.DatabaseURL != "postgres://u:p@h/d" {
			t.Errorf("%v: key %q url %q", tc.args, c.AdminKey, c.DatabaseURL)
		}
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/d?sslmode=disable":     "postgres://u:xxxxx@h:5432/d?sslmode=disable",
		"postgresql://u@h/d":                           "postgresql://u@h/d",
		"postgres://u@h/d?password=pw&sslmode=require": "postgres://u@h/d?password=xxxxx&sslmode=require",
		"host=h password=pw user=u":                    "host=h password=xxxxx user=u",
		"host=h password = 'p w\\'x' user=u":           "host=h password = xxxxx user=u",
		"postgres://u:p%zz@h/d":                        "(set)",
		"host=h user=u":                                "host=h user=u",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTLSSettingsGoTogether: a certificate without its key (or the
// reverse) stops the command at start.
func TestTLSSettingsGoTogether(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"serve", "--tls-cert=cert.pem"},
		env(map[string]string{"DATABASE_URL": "postgres://u@h/d"}), &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "LEDGERD_TLS_KEY") {
		t.Fatalf("got %v", err)
	}
}

// TestDatabaseErrorsHidePassword: a database URL that cannot be parsed or
// reached is reported without its password.
func TestDatabaseErrorsHidePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://u:pw-3f9a%zz@127.0.0.1:1/x",
		"postgres://u:pw-3f9a@127.0.0.1:1/x?connect_timeout=2",
		"host=127.0.0.1 port=1 user=u password=pw-3f9a connect_timeout=2",
	} {
		for _, cmd := range []string{"serve", "migrate"} {
			var out strings.Builder
			err := run(context.Background(), []string{cmd}, env(map[string]string{"DATABASE_URL": url}), &out, &out)
			if err == nil {
				t.Fatalf("%s with %s: no error", cmd, url)
			}
			if strings.Contains(err.Error()+out.String(), "pw-3f9a") {
				t.Errorf("%s: the password is in %q / %q", cmd, err, out.String())
			}
		}
	}
}

// TestTraceSampleRatioBounded: a ratio outside [0, 1] stops the node
// before it starts, naming the variable.
func TestTraceSampleRatioBounded(t *testing.T) {
	for _, v := range []string{"-0.1", "1.5"} {
		var stderr strings.Builder
		err := run(context.Background(), []string{"serve"},
			env(map[string]string{"DATABASE_URL": "postgres://u@h/d", "LEDGERD_TRACE_SAMPLE_RATIO": v}), &stderr, &stderr)
		if err == nil || !strings.Contains(err.Error(), "LEDGERD_TRACE_SAMPLE_RATIO") {
			t.Errorf("%s: got %v", v, err)
		}
	}
}
