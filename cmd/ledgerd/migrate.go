package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/postgres"
)

func runMigrate(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Apply the embedded schema migrations and create partitions ahead.", stderr)
	var url string
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	b.secret(&url, "database-url", "DATABASE_URL", "PostgreSQL `URL` of the primary", maskURL)
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
	before, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	after, err := db.CheckSchema(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, migrateSummary(before, after))
	return nil
}

// schemaVersion is the database's schema version, 0 before any migration.
// An old schema is what migrate is for, so it is not an error here.
func schemaVersion(ctx context.Context, db *postgres.DB) (int64, error) {
	v, err := db.CheckSchema(ctx)
	if err != nil && !errors.Is(err, postgres.ErrSchemaTooOld) {
		return 0, err
	}
	return v, nil
}

// migrateSummary says what a run changed. Migrations are numbered
// 1, 2, … without gaps, so the versions name the ones applied. (Another
// deploy job migrating at the same time may have applied some of them.)
func migrateSummary(before, after int64) string {
	switch {
	case after == before:
		return fmt.Sprintf("schema up to date at version %d; nothing applied", after)
	case after == before+1:
		return fmt.Sprintf("applied migration %d; schema at version %d", after, after)
	default:
		return fmt.Sprintf("applied migrations %d to %d; schema at version %d", before+1, after, after)
	}
}
