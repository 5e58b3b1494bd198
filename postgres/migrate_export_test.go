package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
)

// MigrateTo applies the embedded migrations up to version and stops there,
// so that a test can put data into an old schema and watch a later
// migration convert it. Test-only: production always migrates to the end.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	sdb := stdlib.OpenDBFromPool(db.Pool)
	defer sdb.Close()
	p, err := provider(sdb)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// MigrateDownTo rolls the embedded migrations back to version, so that a
// test can check a migration's Down keeps the data.
func (db *DB) MigrateDownTo(ctx context.Context, version int64) error {
	sdb := stdlib.OpenDBFromPool(db.Pool)
	defer sdb.Close()
	p, err := provider(sdb)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate down to %d: %w", version, err)
	}
	return nil
}
