// Package e2e holds ledgerd's end-to-end invariant tests (docs/api.md §Invariants): real
// PostgreSQL, real API nodes (in process, or `ledgerd serve` children that
// are killed with SIGKILL), concurrent clients, and afterwards a full audit
// of the ledger through the public API.
//
// No test here calls t.Parallel, on purpose: TestPostgresImmediateRestart
// restarts the test binary's one PostgreSQL cluster, which every other test
// of this binary uses too, and the load tests are meant to have the
// machine's cores to themselves (they run with -race on 2 cores). Running
// them one after another keeps each under its own time bound and the
// restart from hitting anyone else.
package e2e

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }
