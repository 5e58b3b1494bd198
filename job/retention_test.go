package job_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/prometheus/client_golang/prometheus"
)

// keys lists a query's single column as strings, in order.
func keys(t *testing.T, e *ledgertest.Env, sql string, args ...any) []string {
	t.Helper()
	rows, err := e.DB.Pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v any
		err := r.Scan(&v)
		return fmt.Sprint(v), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// auditScript runs docs/audit_verify.py on listed entries, from hash from
// (empty: the zero hash).
func auditScript(t *testing.T, listed []byte, from string) string {
	t.Helper()
	cmd := exec.Command("python3", "../docs/audit_verify.py", "-")
	cmd.Env = append(os.Environ(), "AUDIT_FROM="+from)
	cmd.Stdin = bytes.NewReader(listed)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Skipf("python3: %v", err)
	}
	return string(out)
}

func execSQL(t *testing.T, e *ledgertest.Env, sql string, args ...any) {
	t.Helper()
	if _, err := e.DB.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestRetentionDeletesExactlyTheOldRows backdates some rows of every side
// table past its retention and runs the worker's retention: exactly those
// rows go, in statements of two rows, counted per table; the ledger's
// newest event stays (a caught-up reader's `after` still answers); only
// the old prefix of the chained audit log goes, and `verify` still passes,
// before and after the chain grows on.
func TestRetentionDeletesExactlyTheOldRows(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "retention")
	e.Account(l, "b", "USD", nil)
	for range 8 {
		e.Transfer(l, "world", "a", 1, "USD").Expect(t, 201)
	}
	var ledgerID int64
	if err := e.DB.Pool.QueryRow(t.Context(), `SELECT id FROM ledgers WHERE name = $1`, l).Scan(&ledgerID); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// The retention pass runs every 100 ms from the start; until rows are
	// backdated it finds nothing to delete.
	startWorker(t, e, job.Config{Registerer: reg, Keep: job.RetentionConfig{Interval: 100 * time.Millisecond, Batch: 2}})
	waitFor(t, 10*time.Second, "audit log chained", func() bool {
		return len(keys(t, e, `SELECT a.position FROM audit_log a LEFT JOIN audit_chains c ON c.ledger_id = a.ledger_id WHERE a.position > coalesce(c.position, 0)`)) == 0
	})
	audit := keys(t, e, `SELECT position FROM audit_log WHERE ledger_id = $1 ORDER BY position`, ledgerID)
	if len(audit) < 8 {
		t.Fatalf("%d audit entries, want one per write at least", len(audit))
	}
	events := keys(t, e, `SELECT id::text FROM events WHERE ledger_id = $1 ORDER BY after_sequence, ordinal`, ledgerID)
	if len(events) != 3 {
		t.Fatalf("events rows %v, want the three account.created", events)
	}

	// Rows of the other tables, half of them old; a pending e-mail and a
	// pending delivery are old too, and must stay.
	execSQL(t, e, `INSERT INTO webhook_endpoints (id, ledger_id, url, status, secret) VALUES ('we_ret', $1, 'http://127.0.0.1:9', 'disabled', 's')`, ledgerID)
	for i, old := range []bool{true, false, true, false} {
		at := time.Now()
		if old {
			at = at.Add(-400 * 24 * time.Hour)
		}
		status := "failed"
		if i == 2 {
			status = "pending"
		}
		execSQL(t, e, `INSERT INTO dead_letters (ledger_id, request, reason, created_at) VALUES ($1, '{}', $2, $3)`, ledgerID, fmt.Sprint(i), at)
		execSQL(t, e, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at,
			status, created_at, next_attempt_at) VALUES ('we_ret', $1, $2, 1, 0, 'x', $3, $4, $3, 'infinity')`, fmt.Sprint("evt_", i), ledgerID, at, status)
		execSQL(t, e, `INSERT INTO transaction_risk (ledger_id, sequence, transaction_id, score, flagged, risk, scored_at)
			VALUES ($1, $2, gen_random_uuid(), 1, false, '{}', $3)`, ledgerID, 1000+i, at)
		execSQL(t, e, `INSERT INTO transaction_traces (transaction_id, traceparent, created_at) VALUES (gen_random_uuid(), $1, $2)`, fmt.Sprint(i), at)
		estatus := "sent"
		if i == 2 {
			estatus = "pending"
		}
		execSQL(t, e, `INSERT INTO emails (ledger_id, monitor_id, event_id, recipients, subject, body, status, created_at)
			VALUES ($1, 'mon', gen_random_uuid(), '{x@example.com}', $2, '', $3, $4)`, ledgerID, fmt.Sprint(i), estatus, at)
	}
	// Delivered rows go after the delivery log's retention (7 days).
	for _, d := range []struct {
		id  string
		age time.Duration
	}{{"evt_d_old", 8 * 24 * time.Hour}, {"evt_d_new", time.Hour}} {
		at := time.Now().Add(-d.age)
		execSQL(t, e, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at,
			status, created_at, delivered_at, next_attempt_at) VALUES ('we_ret', $1, $2, 1, 0, 'x', $3, 'delivered', $3, $3, 'infinity')`,
			d.id, ledgerID, at)
	}
	// Every events row is old; audit entries 0..3 are old, and one further
	// on (index 5) too, past a young one that ends the prefix.
	old := time.Now().Add(-500 * 24 * time.Hour)
	// The chain hashes `at`: the backdated entries are rechained from
	// scratch (as if they had been written then), in one transaction so
	// that no retention pass sees them backdated but chained as before.
	err := pgx.BeginFunc(t.Context(), e.DB.Pool, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE events SET created_at = $2 WHERE ledger_id = $1`, []any{ledgerID, old}},
			{`UPDATE audit_log SET at = $2 WHERE ledger_id = $1 AND position = ANY ($3::bigint[])`,
				[]any{ledgerID, old, []string{audit[0], audit[1], audit[2], audit[3], audit[5]}}},
			{`DELETE FROM audit_hashes WHERE ledger_id = $1`, []any{ledgerID}},
			{`UPDATE audit_chains SET position = 0, hash = $2 WHERE ledger_id = $1`, []any{ledgerID, fmt.Sprintf("%064d", 0)}},
		} {
			if _, err := tx.Exec(t.Context(), q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		`SELECT id::text FROM events WHERE ledger_id = $1 ORDER BY after_sequence, ordinal`: events[2:],
		`SELECT reason FROM dead_letters WHERE ledger_id = $1 ORDER BY id`:                  {"1", "3"},
		`SELECT event_id FROM webhook_deliveries WHERE ledger_id = $1 ORDER BY id`:          {"evt_1", "evt_2", "evt_3", "evt_d_new"},
		`SELECT sequence FROM transaction_risk WHERE ledger_id = $1 ORDER BY sequence`:      {"1001", "1003"},
		`SELECT traceparent FROM transaction_traces WHERE $1::bigint > 0 ORDER BY 1`:        {"1", "3"},
		`SELECT subject FROM emails WHERE ledger_id = $1 ORDER BY id`:                       {"1", "2", "3"},
		`SELECT position FROM audit_log WHERE ledger_id = $1 ORDER BY position`:             audit[4:],
	}
	waitFor(t, 15*time.Second, "old rows deleted", func() bool {
		for q, w := range want {
			if !slices.Equal(keys(t, e, q, ledgerID), w) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // further passes delete nothing more
	for q, w := range want {
		if got := keys(t, e, q, ledgerID); !slices.Equal(got, w) {
			t.Errorf("%s: %v, want %v", q, got, w)
		}
	}
	for table, n := range map[string]float64{"events": 2, "dead_letters": 2, "webhook_deliveries_failed": 1,
		"transaction_risk": 2, "transaction_traces": 2, "emails": 1, "audit_log": 4} {
		if got := ledgertest.Counter(t, reg, "ledgerd_retention_deleted_rows_total", "table", table); got != n {
			t.Errorf("ledgerd_retention_deleted_rows_total{table=%q} = %v, want %v", table, got, n)
		}
	}
	cp := keys(t, e, `SELECT position || ' ' || hash FROM audit_checkpoints WHERE ledger_id = $1`, ledgerID)
	prev := keys(t, e, `SELECT $2 || ' ' || encode(CASE WHEN p.i = 1 THEN b.prev
			ELSE substring(b.hashes FROM (p.i::int - 2) * 32 + 1 FOR 32) END, 'hex')
		FROM audit_hashes b, unnest(b.positions) WITH ORDINALITY AS p(position, i)
		WHERE b.ledger_id = $1 AND p.position = $3::bigint`, ledgerID, audit[3], audit[4])
	if len(cp) != 1 || !slices.Equal(cp, prev) {
		t.Errorf("checkpoint %v, want the last deleted entry and the hash the first kept one links to %v", cp, prev)
	}
	if _, err := e.DB.Verify(t.Context(), l); err != nil {
		t.Fatalf("verify after retention: %v", err)
	}
	// The script of docs/audit.md verifies what the API still lists from
	// the checkpoint's hash, and refuses it from the zero hash.
	page := e.Do("GET", "/v1/ledgers/"+l+"/audit?limit=1000", admin, nil).Expect(t, 200).JSON()["data"]
	listed, _ := json.Marshal(page)
	from := strings.Fields(cp[0])[1]
	if out := auditScript(t, listed, from); !strings.HasPrefix(out, fmt.Sprintf("ok: %d chained entries", len(audit)-4)) {
		t.Errorf("audit_verify.py with AUDIT_FROM: %s", out)
	}
	if out := auditScript(t, listed, ""); !strings.HasPrefix(out, "MISMATCH at aud_"+audit[4]) {
		t.Errorf("audit_verify.py from the zero hash: %s", out)
	}
	// A reader caught up on the newest event keeps reading after it.
	e.Do("GET", "/v1/ledgers/"+l+"/events?after=evt_"+events[2], admin, nil).Expect(t, 200)

	// The chain grows on from what is kept, and still verifies; a kept
	// entry changed is still caught.
	e.Transfer(l, "world", "b", 1, "USD").Expect(t, 201)
	waitFor(t, 10*time.Second, "audit log chained", func() bool {
		return len(keys(t, e, `SELECT a.position FROM audit_log a LEFT JOIN audit_chains c ON c.ledger_id = a.ledger_id WHERE a.position > coalesce(c.position, 0)`)) == 0
	})
	if _, err := e.DB.Verify(t.Context(), l); err != nil {
		t.Fatalf("verify after the chain grew: %v", err)
	}
	execSQL(t, e, `UPDATE audit_log SET actor = 'mallory' WHERE ledger_id = $1 AND position = $2`, ledgerID, audit[4])
	if _, err := e.DB.Verify(t.Context(), l); err == nil {
		t.Fatal("verify passed with a kept audit entry changed")
	}
}
