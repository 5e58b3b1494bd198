package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestArchiveCommands: `ledgerd archive` moves a past month to the local
// directory under the data dir and says so; `ledgerd verify` still
// matches; `ledgerd restore` puts the month back and reports it.
func TestArchiveCommands(t *testing.T) {
	ctx := context.Background()
	url := ledgertest.NewDatabase(t)
	month := postgres.Month(time.Now()).AddDate(0, -4, 0)
	ledgertest.Backdated(t, url, "shop", nil, ledgertest.Transfer{At: month.Add(time.Hour), Amount: 10},
		ledgertest.Transfer{At: time.Now(), Amount: 11})
	dir := t.TempDir()
	cmd := func(args ...string) (string, error) {
		var stdout, stderr strings.Builder
		err := run(ctx, args, env(map[string]string{"DATABASE_URL": url, "LEDGERD_DATA_DIR": dir}), &stdout, &stderr)
		return stdout.String(), err
	}
	name := month.Format("2006-01")
	out, err := cmd("archive")
	if err != nil || !strings.Contains(out, "archived "+name+"\n") {
		t.Fatalf("archive: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "archive", "ledgers", "shop", name, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("verify"); err != nil || !strings.HasPrefix(out, "ok: 1 ledger(s)") {
		t.Fatalf("verify after archival: %q %v", out, err)
	}
	if out, err := cmd("restore", "--ledger", "shop", "--month", name); err != nil ||
		out != "restored ledger shop "+name+": 1 transactions, 2 entries, sequences 1..1\n" {
		t.Fatalf("restore: %q %v", out, err)
	}
	if _, err := cmd("restore", "--ledger", "shop", "--month", "2026-13"); err == nil || !strings.Contains(err.Error(), "YYYY-MM") {
		t.Fatalf("restore of a malformed month: %v", err)
	}
	if out, err := cmd("verify"); err != nil || !strings.HasPrefix(out, "ok: 1 ledger(s)") {
		t.Fatalf("verify after restore: %q %v", out, err)
	}
}
