package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
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
	var reset bool
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.str(&dataDir, "data-dir", "LEDGERD_DATA_DIR", ".ledgerd", "where the local cluster, its password, the admin key and the log live")
	b.secret(&c.DatabaseURL, "database-url", "DATABASE_URL", "use the database at this `URL` instead of a local cluster", maskURL)
	fs.BoolVar(&reset, "reset", false, "delete the local cluster's data (every ledger, account and key) before starting; keeps the admin key")
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
		if c.AdminKey, err = loadOrCreateSecret(keyFile, "ldadmin_"); err != nil {
			return err
		}
	} else {
		keyFile = ""
	}
	pgData := filepath.Join(dataDir, "pgdata")
	if reset {
		if c.DatabaseURL != "" {
			return errors.New("--reset deletes the local cluster only; with DATABASE_URL set, drop and recreate that database yourself")
		}
		if err := pgcluster.Remove(pgData); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "ledgerd dev: deleted", pgData)
	}
	logPath := filepath.Join(dataDir, "ledgerd.log")
	devLog, closeLog, err := newDevLogger(logPath, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	tel, err := newTelemetry(ctx, &c, lookupEnv, stdout, devLog)
	if err != nil {
		return err
	}

	if c.DatabaseURL == "" {
		// A password, rather than trust, because every local user can
		// reach a loopback port.
		password, err := loadOrCreateSecret(filepath.Join(dataDir, "pg-password"), "")
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "ledgerd dev: starting PostgreSQL in", pgData)
		cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: pgData, Password: password})
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
	db, err := openDB(ctx, &c, tel)
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
	return serveNode(ctx, &c, db, tel, func(url string) {
		keyRef := "$LEDGERD_ADMIN_KEY"
		where := "from LEDGERD_ADMIN_KEY"
		if keyFile != "" {
			keyRef = "$(cat " + relPath(keyFile) + ")"
			where = relPath(keyFile)
		}
		fmt.Fprintf(stderr, `
ledgerd dev is up
  API         %s
  admin key   %s
  ledger      demo
  logs        %s (one line per request; warnings and errors also on this terminal)
  try         curl -s -H "Authorization: Bearer %s" %s/v1/ledgers/demo
  stop        Ctrl-C
  reset data  Ctrl-C, then ledgerd dev --reset

`, url, where, relPath(logPath), keyRef, url)
	})
}

// newDevLogger logs everything, request lines included, to a file
// (truncated at start: the log of this run), and only warnings and errors
// to the terminal, where a line per request under load would bury the
// banner.
func newDevLogger(path string, terminal io.Writer) (slog.Handler, func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	h := slog.NewMultiHandler(
		slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(terminal, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return h, func() { _ = f.Close() }, nil
}

// relPath shows path relative to the working directory when it is below it.
func relPath(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}

// loadOrCreateSecret returns the secret kept in path, creating it (mode
// 0600) on first run so that scripts can read it with $(cat …).
func loadOrCreateSecret(path, prefix string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if k := strings.TrimSpace(string(b)); len(k) >= 32 {
			return k, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	k := prefix + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", err
	}
	return k, nil
}
