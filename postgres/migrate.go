package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion is the schema this binary needs: the newest embedded
// migration. serve refuses an older schema and accepts a newer one, so that
// expand/contract migrations allow rolling deploys.
const SchemaVersion = 19

func provider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresTableLocker()
	if err != nil {
		return nil, err
	}
	// Out of order: migrations are written on branches in parallel, so a
	// database may hold a later one before an earlier one lands; each
	// migration stands alone, so applying the earlier one afterwards is
	// safe, where refusing would strand the database.
	return goose.NewProvider(goose.DialectPostgres, db, sub, append([]goose.ProviderOption{goose.WithLocker(locker), goose.WithAllowOutofOrder(true)}, opts...)...)
}

// Migrate applies every pending migration and creates the partitions ahead.
func (db *DB) Migrate(ctx context.Context) error {
	sdb := stdlib.OpenDBFromPool(db.Pool)
	defer sdb.Close()
	p, err := provider(sdb)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return db.EnsurePartitions(ctx)
}

// ErrSchemaTooOld is returned by CheckSchema when migrations are missing.
var ErrSchemaTooOld = errors.New("database schema is older than this ledgerd needs")

// SchemaVersionSQL is the newest migration applied.
const SchemaVersionSQL = `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`

// CheckSchema returns the database's schema version, and ErrSchemaTooOld
// when it is older than SchemaVersion. A newer schema is fine.
func (db *DB) CheckSchema(ctx context.Context) (int64, error) {
	var v int64
	err := db.queryRow(ctx, SchemaVersionSQL).Scan(&v)
	if err != nil {
		if pgCode(err) == "42P01" { // undefined_table: never migrated
			return 0, fmt.Errorf("%w: no schema (run `ledgerd migrate`)", ErrSchemaTooOld)
		}
		return 0, err
	}
	if v < SchemaVersion {
		return v, fmt.Errorf("%w: database has version %d, this binary needs %d (run `ledgerd migrate`)", ErrSchemaTooOld, v, SchemaVersion)
	}
	return v, nil
}
