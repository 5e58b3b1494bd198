package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestVerifyCommand: `ledgerd verify` says ok and succeeds on an intact
// database, names the tampered audit entry and fails (exit 1) after a
// change in SQL, and --ledger limits it to one ledger.
func TestVerifyCommand(t *testing.T) {
	ctx := context.Background()
	url := ledgertest.NewDatabase(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range []string{"a", "b"} {
		l, err := db.CreateLedger(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InsertAudit(ctx, l.ID, &ledgerd.AuditEntry{Actor: "k", RequestID: "r", Action: "forbidden", Target: "/x", Status: 403}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ChainAudit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	verify := func(args ...string) (string, error) {
		var stdout, stderr strings.Builder
		err := run(ctx, append([]string{"verify"}, args...), env(map[string]string{"DATABASE_URL": url}), &stdout, &stderr)
		return stdout.String(), err
	}
	if out, err := verify(); err != nil || out != "ok: 2 ledger(s); audit chains and account balances match\n" {
		t.Fatalf("verify: %q %v", out, err)
	}
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, url)) // a raw connection: never through PgBouncer
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pos int64
	if err := conn.QueryRow(ctx, `UPDATE audit_log SET target = '/y' WHERE ledger_id = (SELECT id FROM ledgers WHERE name = 'b') AND action = 'forbidden' RETURNING position`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	out, err := verify()
	if !errors.Is(err, errMismatch) || !strings.HasPrefix(out, "MISMATCH ledger b: audit entry aud_") || !strings.Contains(out, "does not match its contents") {
		t.Fatalf("verify after tampering: %q %v", out, err)
	}
	if out, err := verify("--ledger", "a"); err != nil || !strings.HasPrefix(out, "ok: 1 ledger(s)") {
		t.Fatalf("verify --ledger a: %q %v", out, err)
	}
}
