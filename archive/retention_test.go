package archive_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/archive"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRetentionOfArchivedMonths archives June and July, then lets the
// worker's retention pass run: the months' ledger_commits, risk scores
// and trace links go, June's references (past LEDGERD_RETAIN_REFERENCES)
// go and July's stay; balance?at=, statements and time-ranged lists
// answer exactly as before on archived and hot months; a restore of June
// brings its commits and free references back, and its side rows stay
// while it is restored.
func TestRetentionOfArchivedMonths(t *testing.T) {
	ctx := context.Background()
	dbURL := ledgertest.NewDatabase(t)
	now := postgres.Month(time.Now())
	june, july := now.AddDate(0, -6, 0), now.AddDate(0, -5, 0)
	day := 24 * time.Hour
	db, lid, txs := ledgertest.Backdated(t, dbURL, "shop", []string{"b"},
		ledgertest.Transfer{At: june.Add(3 * day), Amount: 100, Reference: "june-ref"},
		ledgertest.Transfer{At: june.Add(20 * day), Amount: 200, To: "b", Reference: "june-2"},
		ledgertest.Transfer{At: june.Add(20*day + time.Hour), Amount: 5},
		ledgertest.Transfer{At: july.Add(10 * day), Amount: 50, To: "b", Reference: "july-ref"},
		ledgertest.Transfer{At: time.Now(), Amount: 300, Reference: "now-ref"})
	// Reads up to this moment keep their answers when later transfers come.
	later := time.Now()
	for _, tx := range txs {
		for _, q := range []string{
			`INSERT INTO transaction_risk (ledger_id, sequence, transaction_id, score, flagged, risk) VALUES ($1, $2, $3, 1, false, '{}')`,
			`INSERT INTO transaction_traces (transaction_id, traceparent) SELECT $3::uuid, ($2::bigint)::text WHERE $1::bigint > 0`,
		} {
			if _, err := db.Pool.Exec(ctx, q, lid, tx.Sequence, tx.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	column := func(sql string) []string {
		t.Helper()
		rows, err := db.Pool.Query(ctx, sql, lid)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	commits := `SELECT first_sequence::text FROM ledger_commits WHERE ledger_id = $1 ORDER BY 1`
	if got := column(commits); len(got) != 5 {
		t.Fatalf("ledger_commits %v, want one row per commit", got)
	}

	bucket := dirBucket(t)
	db.Archive = archive.NewReader(bucket)
	e := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, Archive: archive.NewReader(bucket)})
	at := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
	var reads []string
	for _, acct := range []string{"a", "b"} {
		base := "/v1/ledgers/shop/accounts/" + acct + "/"
		// Before, at and between the commits of each month, and across
		// the months' ends.
		for _, m := range []time.Time{june.Add(-time.Hour), june.Add(day), june.Add(3 * day), june.Add(10 * day),
			june.Add(20 * day), june.Add(20*day + 30*time.Minute), june.Add(20*day + time.Hour), july, july.Add(10 * day),
			july.Add(20 * day), now.Add(-time.Hour), later} {
			reads = append(reads, base+"balance?at="+at(m))
		}
		for _, r := range [][2]time.Time{{june.Add(10 * day), july.Add(15 * day)}, {june.Add(3 * day), june.Add(20 * day)},
			{june.Add(20*day + time.Minute), now.Add(time.Hour)}, {july.Add(11 * day), later}} {
			reads = append(reads, base+"entries?from="+at(r[0])+"&to="+at(r[1]))
		}
	}
	read := func() map[string]string {
		out := map[string]string{}
		for _, r := range reads {
			out[r] = string(e.Do("GET", r, ledgertest.AdminKey, nil).Expect(t, 200).Body)
		}
		return out
	}
	before := read()
	if !strings.Contains(before[reads[3]], `"posted":100`) || !strings.Contains(before[reads[len(reads)/2+6]], `"posted":200`) {
		t.Fatalf("history reads do not show June: %s %s", before[reads[3]], before[reads[len(reads)/2+6]])
	}

	arc := &archive.Archiver{DB: db, Bucket: bucket, IdempotencyTTL: day}
	if rep, err := arc.Run(ctx); err != nil || len(rep.Archived) != 2 {
		t.Fatalf("archive: %+v %v", rep, err)
	}
	same := func(when string) {
		t.Helper()
		for r, got := range read() {
			if got != before[r] {
				t.Errorf("GET %s %s:\n%s\nbefore archival:\n%s", r, when, got, before[r])
			}
		}
	}
	same("after archival")
	lists := []string{"?from=" + at(june.Add(10*day)), "?from=" + at(july.Add(day)) + "&to=" + at(later),
		"?to=" + at(now), "?reference=now-ref", "?from=" + at(now)}
	listed := map[string]string{}
	for _, q := range lists {
		listed[q] = string(e.Do("GET", "/v1/ledgers/shop/transactions"+q, ledgertest.AdminKey, nil).Expect(t, 200).Body)
	}
	if !strings.Contains(listed[lists[0]], txs[4].ID) || strings.Contains(listed[lists[2]], txs[4].ID) {
		t.Fatalf("lists: %v", listed)
	}

	reg := prometheus.NewRegistry()
	wctx, cancel := context.WithCancel(ctx)
	julyEnd := july.AddDate(0, 1, 0)
	w := job.New(db, db, job.Config{Registerer: reg, Poll: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// June ended more than this ago, July less.
		Keep: job.RetentionConfig{Interval: 50 * time.Millisecond, Batch: 1, References: time.Since(julyEnd) + 15*day}})
	done := make(chan struct{})
	go func() { _ = w.Run(wctx); close(done) }()
	defer func() { cancel(); <-done }()

	want := map[string][]string{
		commits: {"5"},
		`SELECT sequence::text FROM transaction_risk WHERE ledger_id = $1 ORDER BY 1`:                           {"5"},
		`SELECT traceparent FROM transaction_traces WHERE $1::bigint > 0 ORDER BY 1`:                            {"5"},
		`SELECT reference FROM transaction_references WHERE ledger_id = $1 ORDER BY 1`:                          {"july-ref", "now-ref"},
		`SELECT state FROM archives WHERE ledger_id = $1 AND state <> 'dropped'`:                                nil,
		`SELECT count(*)::text FROM transactions WHERE ledger_id = $1`:                                          {"1"},
		`SELECT count(*)::text FROM archives WHERE ledger_id = $1 AND first_sequence > 0 AND state = 'dropped'`: {"2"},
	}
	deadline := time.Now().Add(15 * time.Second)
	for q, wv := range want {
		for !slices.Equal(column(q), wv) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // further passes delete nothing more
	for q, wv := range want {
		if got := column(q); !slices.Equal(got, wv) {
			t.Errorf("%s: %v, want %v", q, got, wv)
		}
	}
	for table, n := range map[string]float64{"ledger_commits": 4, "transaction_risk": 4, "transaction_traces": 4, "transaction_references": 2} {
		if got := ledgertest.Counter(t, reg, "ledgerd_retention_deleted_rows_total", "table", table); got != n {
			t.Errorf("ledgerd_retention_deleted_rows_total{table=%q} = %v, want %v", table, got, n)
		}
	}

	same("after retention")
	for _, q := range lists {
		if got := string(e.Do("GET", "/v1/ledgers/shop/transactions"+q, ledgertest.AdminKey, nil).Expect(t, 200).Body); got != listed[q] {
			t.Errorf("GET transactions%s after retention:\n%s\nbefore:\n%s", q, got, listed[q])
		}
	}
	post := func(ref string) *ledgertest.Response {
		return e.Do("POST", "/v1/ledgers/shop/transactions", ledgertest.AdminKey, map[string]any{"reference": ref,
			"postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}}})
	}
	if got := post("july-ref").Expect(t, 409, "duplicate_reference").JSON()["transaction_id"]; got != txs[3].ID {
		t.Errorf("duplicate_reference names %v, want July's %s", got, txs[3].ID)
	}
	reused := post("june-ref").Expect(t, 201).JSON()["id"]

	// A restore puts June's commits and its references back, but for one
	// taken meanwhile.
	if _, err := arc.Restore(ctx, "shop", june); err != nil {
		t.Fatal(err)
	}
	if got := column(commits); !slices.Equal(got, []string{"1", "2", "3", "5", "6"}) {
		t.Errorf("ledger_commits after restoring June: %v", got)
	}
	if got := column(`SELECT reference || ' ' || transaction_id FROM transaction_references WHERE ledger_id = $1 ORDER BY 1`); !slices.Equal(got,
		[]string{"july-ref " + txs[3].ID, "june-2 " + txs[1].ID, "june-ref " + reused.(string), "now-ref " + txs[4].ID}) {
		t.Errorf("references after restoring June: %v", got)
	}
	same("after restoring June")
	if got := string(e.Do("GET", "/v1/ledgers/shop/transactions?reference=june-2", ledgertest.AdminKey, nil).Expect(t, 200).Body); !strings.Contains(got, txs[1].ID) {
		t.Errorf("reference june-2 after restore: %s", got)
	}
	// The restored month's side rows stay through further passes (the
	// worker still runs one every 50 ms).
	if _, err := db.Pool.Exec(ctx, `INSERT INTO transaction_risk (ledger_id, sequence, transaction_id, score, flagged, risk)
		VALUES ($1, 1, $2, 1, false, '{}')`, lid, txs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO transaction_traces (transaction_id, traceparent) VALUES ($1, '1')`, txs[0].ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for q, wv := range map[string][]string{
		`SELECT sequence::text FROM transaction_risk WHERE ledger_id = $1 AND sequence < 5 ORDER BY 1`: {"1"},
		`SELECT traceparent FROM transaction_traces WHERE $1::bigint > 0 AND traceparent = '1'`:        {"1"},
		commits: {"1", "2", "3", "5", "6"},
	} {
		if got := column(q); !slices.Equal(got, wv) {
			t.Errorf("after passes over the restored month, %s: %v, want %v", q, got, wv)
		}
	}
}
