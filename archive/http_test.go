package archive_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/archive"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

// Over the API, an archived month answers balance?at= and entries as
// before (from the files), GET of one of its transactions and actions on
// it are 410 archived naming the archive, and its references stay taken.
func TestArchivedMonthOverHTTP(t *testing.T) {
	ctx := context.Background()
	dbURL := ledgertest.NewDatabase(t)
	june := postgres.Month(time.Now()).AddDate(0, -6, 0)
	db, _, txs := ledgertest.Backdated(t, dbURL, "shop", nil, ledgertest.Transfer{At: june.AddDate(0, 0, 3), Amount: 100, Reference: "june-ref"},
		ledgertest.Transfer{At: june.AddDate(0, 0, 20), Amount: 200}, ledgertest.Transfer{At: time.Now(), Amount: 300})
	juneID := txs[0].ID
	bucket := dirBucket(t)
	e := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, Archive: archive.NewReader(bucket)})

	base := "/v1/ledgers/shop/accounts/a/"
	reads := []string{
		base + "balance?at=" + url.QueryEscape(june.AddDate(0, 0, 10).Format(time.RFC3339)),
		base + "balance?at=" + url.QueryEscape(june.AddDate(0, 1, 0).Format(time.RFC3339)),
		base + "entries?from=" + url.QueryEscape(june.Format(time.RFC3339)) + "&to=" + url.QueryEscape(june.AddDate(0, 1, 0).Format(time.RFC3339)),
		base + "entries?limit=1",
		"/v1/ledgers/shop/accounts/a",
	}
	before := map[string]string{}
	for _, r := range reads {
		before[r] = string(e.Do("GET", r, ledgertest.AdminKey, nil).Expect(t, 200).Body)
	}
	if !strings.Contains(before[reads[2]], juneID) || !strings.Contains(before[reads[0]], "100") {
		t.Fatalf("June's statement %s and balance %s do not show June", before[reads[2]], before[reads[0]])
	}
	e.Do("GET", "/v1/ledgers/shop/transactions/"+juneID, ledgertest.AdminKey, nil).Expect(t, 200)

	arc := &archive.Archiver{DB: db, Bucket: bucket, IdempotencyTTL: 400 * 24 * time.Hour}
	rep, err := arc.Run(ctx)
	if err != nil || len(rep.Archived) != 0 || !strings.Contains(strings.Join(rep.Skipped, " "), "idempotency records") {
		t.Fatalf("run within the idempotency retention: %+v %v", rep, err)
	}
	arc.IdempotencyTTL = 24 * time.Hour
	if rep, err = arc.Run(ctx); err != nil || len(rep.Archived) != 1 {
		t.Fatalf("run: %+v %v", rep, err)
	}
	for _, r := range reads {
		if got := string(e.Do("GET", r, ledgertest.AdminKey, nil).Expect(t, 200).Body); got != before[r] {
			t.Fatalf("GET %s after archival:\n%s\nbefore:\n%s", r, got, before[r])
		}
	}
	res := e.Do("GET", "/v1/ledgers/shop/transactions/"+juneID, ledgertest.AdminKey, nil).Expect(t, 410, "archived")
	if d, _ := res.JSON()["detail"].(string); !strings.Contains(d, "ledgers/shop/"+june.Format("2006-01")+"/transactions.parquet") ||
		!strings.Contains(d, "ledgerd restore --ledger shop --month "+june.Format("2006-01")) {
		t.Fatalf("410 detail: %q", d)
	}
	// Actions on an archived transaction answer as its GET does; one on
	// a transaction of an online month that never was is still 404.
	for _, action := range []string{"reverse", "void", "post"} {
		res := e.Do("POST", "/v1/ledgers/shop/transactions/"+juneID+"/"+action, ledgertest.AdminKey, map[string]any{}).Expect(t, 410, "archived")
		if d, _ := res.JSON()["detail"].(string); !strings.Contains(d, "ledgerd restore --ledger shop --month "+june.Format("2006-01")) {
			t.Fatalf("410 detail of %s: %q", action, d)
		}
	}
	e.Do("POST", "/v1/ledgers/shop/transactions/"+postgres.TransactionIDAt(time.Now(), func() uint64 { return 7 }).String()+"/void",
		ledgertest.AdminKey, map[string]any{}).Expect(t, 404, "not_found")
	body := map[string]any{"reference": "june-ref", "postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}}}
	e.Do("POST", "/v1/ledgers/shop/transactions", ledgertest.AdminKey, body).Expect(t, 409, "duplicate_reference")
}

// dirBucket is a bucket over a new local directory, closed with the test.
func dirBucket(t *testing.T) *blob.Bucket {
	t.Helper()
	dir, err := archive.DirURL(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := blob.OpenBucket(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	return bucket
}
