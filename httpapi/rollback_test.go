package httpapi_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestRollbackWhileOverlapped makes batches fail in PostgreSQL while the
// ledger's writer has the next batch decided on their outcome and
// inserting behind them (every batch overlapped, OverlapMin 1): a
// statement trigger rejects any multi-row insert into
// transactions that holds a "poison" reference, the way an unexpected
// database error would, while the same transaction alone goes through.
// Every request must still get exactly one 201, in a gap-free sequence:
// the failed batch is retried item by item, and the batch that was
// queued behind it on the ledger lock is rolled back and redone, not
// applied against the failed batch's balances.
func TestRollbackWhileOverlapped(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{Commit: batch.Config{OverlapMin: 1}})
	l := c.ledger("pipeline")
	c.account(l, "world", "USD", nil)
	const accounts = 8
	for i := 0; i < accounts; i++ {
		c.account(l, fmt.Sprintf("a%d", i), "USD", nil)
	}
	before := c.lastSequence(l)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, c.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE FUNCTION poison_batch() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF (SELECT count(*) FROM new_rows) > 1 AND EXISTS (SELECT 1 FROM new_rows WHERE reference LIKE 'poison-%') THEN
				PERFORM nextval('poisoned');
				RAISE EXCEPTION 'poisoned batch';
			END IF;
			RETURN NULL;
		END $$`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE SEQUENCE poisoned`,
		`CREATE TRIGGER poison AFTER INSERT ON transactions REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION poison_batch()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	const clients, perClient = 32, 25
	var created atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				n := g*perClient + i
				ref := fmt.Sprintf("ref-%d", n)
				if n%20 == 7 {
					ref = fmt.Sprintf("poison-%d", n)
				}
				body := merge(tx(posting("world", fmt.Sprintf("a%d", n%accounts), 1, "USD")), "reference", ref)
				r, err := c.e.TryDo("POST", txPath(l), admin, body, "Idempotency-Key", fmt.Sprintf("k-%d", n))
				if err == nil {
					err = checkAnswer(r)
				}
				if err == nil && r.Status != 201 {
					err = fmt.Errorf("request %d: %d %s", n, r.Status, r.Body)
				}
				if err != nil {
					errs <- err
					return
				}
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var failures int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(last_value, 0) * (is_called::int) FROM poisoned`).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures == 0 {
		t.Fatalf("no batch was poisoned: the test did not exercise the rollback path")
	}
	t.Logf("%d batches rolled back", failures)

	if got, want := c.lastSequence(l)-before, created.Load(); got != want {
		t.Fatalf("sequence moved by %d for %d created transactions", got, want)
	}
	var sum int64
	for i := 0; i < accounts; i++ {
		sum += c.posted(l, fmt.Sprintf("a%d", i))
	}
	if sum != created.Load() || -c.posted(l, "world") != sum {
		t.Fatalf("balances: accounts hold %d, world %d, %d transfers created", sum, c.posted(l, "world"), created.Load())
	}
	// Each transaction is stored once, with its own reference, and every
	// sequence number from the first to the last is used.
	var n, distinct, lo, hi int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT reference), min(sequence), max(sequence) FROM transactions
		WHERE ledger_id = (SELECT id FROM ledgers WHERE name = $1) AND sequence > $2`, l, before).Scan(&n, &distinct, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n != created.Load() || distinct != n || lo != before+1 || hi != before+n {
		t.Fatalf("stored %d transactions (%d references) with sequences %d..%d after %d", n, distinct, lo, hi, before)
	}
}
