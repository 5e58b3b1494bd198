package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/postgres"
)

// errMismatch makes the process exit 1 after verify has said what did not
// match.
var errMismatch = errors.New("verification failed")

// runVerify recomputes the audit chains and every account's balances and
// versions from its entries (docs/audit.md §Verification).
func runVerify(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "Recompute the audit hash chains and every account's balances and versions from its entries; exit 1 at the first mismatch.", stderr)
	var url, ledger string
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.secret(&url, "database-url", "DATABASE_URL", "PostgreSQL `URL` of the primary", maskURL)
	fs.StringVar(&ledger, "ledger", "", "verify only the ledger with this `name`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if url == "" {
		return errors.New("DATABASE_URL (or --database-url) is required")
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.Verify(ctx, ledger)
	var m *postgres.Mismatch
	if errors.As(err, &m) {
		fmt.Fprintln(stdout, "MISMATCH", m.Error())
		return errMismatch
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %d ledger(s); audit chains and account balances match\n", n)
	return nil
}
