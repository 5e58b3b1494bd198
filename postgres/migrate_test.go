package postgres_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// TestMigrateCommitTimes puts transactions into a version-1 schema and
// checks that migration 00002 backfills ledger_commits the way the write
// path fills it (one row per shared created_at, with its sequence range),
// so that time lookups on a migrated ledger answer as before the
// transactions_created index went away.
func TestMigrateCommitTimes(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewEmptyDatabase(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}

	// Whole seconds, so that the comparison does not depend on how
	// timestamptz rounds; an hour back stays within the partitions that
	// EnsurePartitions made (last month on).
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	var ledgers [3]int64
	for i, name := range []string{"a", "b", "empty"} {
		if err := db.Pool.QueryRow(ctx, `INSERT INTO ledgers (name) VALUES ($1) RETURNING id`, name).Scan(&ledgers[i]); err != nil {
			t.Fatal(err)
		}
	}
	a, b := ledgers[0], ledgers[1]
	r := rand.New(rand.NewPCG(1, 2))
	// Ledger b shares a's times: the backfill must not merge across ledgers.
	for _, tx := range []struct {
		ledger, seq int64
		at          time.Time
	}{
		{a, 1, t0}, {a, 2, t0}, {a, 3, t1}, {a, 4, t2}, {a, 5, t2}, {a, 6, t2},
		{b, 1, t0}, {b, 2, t1},
	} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO transactions (id, ledger_id, sequence, status, postings, created_at)
			VALUES ($1, $2, $3, 'posted', '[{"source":"x","destination":"y","amount":1,"asset":"USD"}]', $4)`,
			postgres.TransactionIDAt(tx.at, r.Uint64), tx.ledger, tx.seq, tx.at)
		if err != nil {
			t.Fatal(err)
		}
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := db.CheckSchema(ctx); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, postgres.SchemaVersion)
	}

	type commit struct {
		ledger, first, last int64
		at                  time.Time
	}
	want := []commit{{a, 1, 2, t0}, {a, 3, 3, t1}, {a, 4, 6, t2}, {b, 1, 1, t0}, {b, 2, 2, t1}}
	rows, err := db.Pool.Query(ctx, `SELECT ledger_id, first_sequence, last_sequence, created_at FROM ledger_commits
		ORDER BY ledger_id, first_sequence`)
	if err != nil {
		t.Fatal(err)
	}
	var got []commit
	for rows.Next() {
		var c commit
		if err := rows.Scan(&c.ledger, &c.first, &c.last, &c.at); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ledger_commits = %v, want %v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ledger != w.ledger || g.first != w.first || g.last != w.last || !g.at.Equal(w.at) {
			t.Errorf("ledger_commits row %d = (%d, %d..%d, %s), want (%d, %d..%d, %s)", i,
				g.ledger, g.first, g.last, g.at.UTC().Format(time.RFC3339Nano), w.ledger, w.first, w.last, w.at.Format(time.RFC3339Nano))
		}
	}

	// The partitions' copies of the index go with the parent; none may
	// be left to cost an insert per transaction.
	var leftover int
	err = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes
		WHERE indexname = 'transactions_created' OR (tablename LIKE 'transactions%' AND indexdef LIKE '%created_at%')`).Scan(&leftover)
	if err != nil {
		t.Fatal(err)
	}
	if leftover != 0 {
		t.Errorf("%d indexes on transactions(created_at) left after the migration", leftover)
	}

	for _, col := range [][2]string{{"idempotency_keys", "key"}, {"transaction_references", "reference"}} {
		var coll string
		err := db.Pool.QueryRow(ctx, `SELECT coalesce(collation_name, '') FROM information_schema.columns
			WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`, col[0], col[1]).Scan(&coll)
		if err != nil {
			t.Fatal(err)
		}
		if coll != "C" {
			t.Errorf("%s.%s collation %q, want C", col[0], col[1], coll)
		}
	}

	// A time range over migrated data resolves through the backfilled rows:
	// [t1, t2) is exactly a's sequence 3.
	list, err := db.ListTransactions(ctx, a, ledgerd.TxFilter{From: &t1, To: &t2, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Sequence != 3 {
		var seqs []int64
		for _, tx := range list {
			seqs = append(seqs, tx.Sequence)
		}
		t.Errorf("transactions in [t1, t2) = sequences %v, want [3]", seqs)
	}
}

// TestMigrateCapturedStatus puts a captured hold as version 3 stored it
// (status posted, resolved_by set) beside its capture, a pending hold and
// a plain posted transaction, and checks that migration 00004 marks only
// the captured hold captured.
func TestMigrateCapturedStatus(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewEmptyDatabase(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	var ledger int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO ledgers (name) VALUES ('l') RETURNING id`).Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour)
	r := rand.New(rand.NewPCG(3, 4))
	hold, capture, pending, plain := postgres.TransactionIDAt(at, r.Uint64), postgres.TransactionIDAt(at, r.Uint64),
		postgres.TransactionIDAt(at, r.Uint64), postgres.TransactionIDAt(at, r.Uint64)
	for _, tx := range []struct {
		id                any
		seq               int64
		status            string
		pendingID, resolv any
	}{
		{hold, 1, "posted", nil, capture}, {capture, 2, "posted", hold, nil}, {pending, 3, "pending", nil, nil}, {plain, 4, "posted", nil, nil},
	} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO transactions (id, ledger_id, sequence, status, postings, created_at, pending_id, resolved_by)
			VALUES ($1, $2, $3, $4, '[{"source":"x","destination":"y","amount":1,"asset":"USD"}]', $5, $6, $7)`,
			tx.id, ledger, tx.seq, tx.status, at, tx.pendingID, tx.resolv)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[any]string{hold: "captured", capture: "posted", pending: "pending", plain: "posted"} {
		var got string
		if err := db.Pool.QueryRow(ctx, `SELECT status FROM transactions WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("status %s, want %s", got, want)
		}
	}
}
