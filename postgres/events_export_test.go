package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// SetEventScanBudget makes reads of events with a type filter stop after n
// rows per side, so that a test reaches the budget with a few rows; the
// returned func restores it.
func SetEventScanBudget(n int) (restore func()) {
	old := eventScanBudget
	eventScanBudget = n
	return func() { eventScanBudget = old }
}

// MigrateWithout applies every embedded migration but version, as a
// database migrated by a branch that did not have it yet.
func (db *DB) MigrateWithout(ctx context.Context, version int64) error {
	sdb := stdlib.OpenDBFromPool(db.Pool)
	defer sdb.Close()
	p, err := provider(sdb, goose.WithExcludeVersions([]int64{version}))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	_, err = p.Up(ctx)
	return err
}
