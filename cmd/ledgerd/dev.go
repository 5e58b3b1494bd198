package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/pgcluster"
)

func runDev(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "Run the whole platform on this machine: a local PostgreSQL in the data directory\n"+
		"(unless DATABASE_URL is set), the schema, an API node and a 'demo' ledger.", stderr)
	var c config
	var dataDir string
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.str(&dataDir, "data-dir", "LEDGERD_DATA_DIR", ".ledgerd", "where the local cluster and the admin key live")
	b.str(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "use this database instead of a local cluster")
	c.bindServe(b, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(b.errs) > 0 {
		return errors.Join(b.errs...)
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	keyFile := filepath.Join(dataDir, "admin-key")
	if c.AdminKey == "" {
		if c.AdminKey, err = loadOrCreateKey(keyFile); err != nil {
			return err
		}
	} else {
		keyFile = ""
	}
	log := newLogger(stdout)

	if c.DatabaseURL == "" {
		fmt.Fprintln(stderr, "ledgerd dev: starting PostgreSQL in", filepath.Join(dataDir, "pgdata"))
		cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dataDir, "pgdata")})
		if err != nil {
			return fmt.Errorf("start PostgreSQL (install it with `make run`, or set DATABASE_URL): %w", err)
		}
		defer func() {
			fmt.Fprintln(stderr, "ledgerd dev: stopping PostgreSQL")
			if err := cl.Stop(); err != nil {
				fmt.Fprintln(stderr, "ledgerd dev: stop PostgreSQL:", err)
			}
		}()
		if err := cl.CreateDatabase(ctx, "ledgerd", ""); err != nil {
			return err
		}
		c.DatabaseURL = cl.URL("ledgerd")
	}
	if err := c.validate(); err != nil {
		return err
	}
	db, err := openDB(ctx, &c)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	if _, err := db.CreateLedger(ctx, "demo"); err != nil {
		var le *ledgerd.Error
		if !errors.As(err, &le) || le.Code != ledgerd.CodeDuplicateLedger {
			return err
		}
	}
	return serveNode(ctx, &c, db, log, func(addr string) {
		url := "http://" + addr
		keyRef := "$LEDGERD_ADMIN_KEY"
		where := "from LEDGERD_ADMIN_KEY"
		if keyFile != "" {
			rel := keyFile
			if wd, err := os.Getwd(); err == nil {
				if r, err := filepath.Rel(wd, keyFile); err == nil && !strings.HasPrefix(r, "..") {
					rel = r
				}
			}
			keyRef = "$(cat " + rel + ")"
			where = rel
		}
		fmt.Fprintf(stderr, `
ledgerd dev is up
  API         %s
  admin key   %s
  ledger      demo
  try         curl -s -H "Authorization: Bearer %s" %s/v1/ledgers/demo
  stop        Ctrl-C

`, url, where, keyRef, url)
	})
}

// loadOrCreateKey returns the admin key kept in path, creating it (mode
// 0600) on first run so that scripts can read it with $(cat …).
func loadOrCreateKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if k := strings.TrimSpace(string(b)); len(k) >= 32 {
			return k, nil
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	k := "ldadmin_" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", err
	}
	return k, nil
}
