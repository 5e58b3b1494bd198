package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestMigrateSaysWhatItApplied: the first run names the migrations it
// applied, the second says there was nothing to do.
func TestMigrateSaysWhatItApplied(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": ledgertest.NewEmptyDatabase(t)}
	for _, want := range []string{
		fmt.Sprintf("applied migrations 1 to %d; schema at version %d\n", postgres.SchemaVersion, postgres.SchemaVersion),
		fmt.Sprintf("schema up to date at version %d; nothing applied\n", postgres.SchemaVersion),
	} {
		var stdout, stderr strings.Builder
		if err := run(context.Background(), []string{"migrate"}, env(vars), &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, &stderr)
		}
		if stdout.String() != want {
			t.Errorf("migrate printed %q, want %q", stdout.String(), want)
		}
	}
}

func TestMigrateSummary(t *testing.T) {
	for _, tc := range []struct {
		before, after int64
		want          string
	}{
		{0, 3, "applied migrations 1 to 3; schema at version 3"},
		{2, 3, "applied migration 3; schema at version 3"},
		{3, 3, "schema up to date at version 3; nothing applied"},
	} {
		if got := migrateSummary(tc.before, tc.after); got != tc.want {
			t.Errorf("migrateSummary(%d, %d) = %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}
