package httpapi_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestLargeBatchRoundTrip: batches large enough to be written with the
// hand-rendered binary COPY store exactly what was answered — ids,
// sequences, timestamps, postings, metadata (non-ASCII, escapes),
// references, hold deadlines — and balances and statements agree.
func TestLargeBatchRoundTrip(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := e.Ledger("copy")
	e.Account(l, "world", "EUR", nil)
	for i := range 10 {
		e.Account(l, fmt.Sprintf("u%d", i), "EUR", ledgertest.Int64(0))
	}
	var items []map[string]any
	for i := range 300 {
		it := map[string]any{
			"postings":        []map[string]any{{"source": "world", "destination": fmt.Sprintf("u%d", i%10), "amount": i + 1, "asset": "EUR"}},
			"metadata":        map[string]string{"n": fmt.Sprint(i), "note": "café \"q\" \\ ✓\n"},
			"idempotency_key": fmt.Sprintf("k%d", i),
		}
		if i%2 == 0 {
			it["reference"] = fmt.Sprintf("ref-é-%d", i)
		}
		if i%7 == 0 {
			it["pending"] = true
			it["pending_timeout_seconds"] = 3600
		}
		items = append(items, it)
	}
	r := e.Do("POST", "/v1/ledgers/"+l+"/transactions/batch", ledgertest.AdminKey, map[string]any{"transactions": items}).Expect(t, 200)
	var out struct {
		Results []struct {
			Status      int             `json:"status"`
			Transaction json.RawMessage `json:"transaction"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	var posted [10]int64
	for i, res := range out.Results {
		if res.Status != 201 {
			t.Fatalf("item %d: %d", i, res.Status)
		}
		var tx map[string]any
		_ = json.Unmarshal(res.Transaction, &tx)
		got := e.Do("GET", "/v1/ledgers/"+l+"/transactions/"+tx["id"].(string), ledgertest.AdminKey, nil).Expect(t, 200)
		if string(got.Body) != string(res.Transaction) {
			t.Fatalf("item %d stored differently:\nanswered %s\nstored   %s", i, res.Transaction, got.Body)
		}
		if i%7 != 0 {
			posted[i%10] += int64(i + 1)
		}
	}
	for i := range 10 {
		a := e.Do("GET", fmt.Sprintf("/v1/ledgers/%s/accounts/u%d", l, i), ledgertest.AdminKey, nil).Expect(t, 200).JSON()
		bal := a["balance"].(map[string]any)
		if fmt.Sprint(bal["posted"]) != fmt.Sprint(posted[i]) {
			t.Fatalf("u%d posted %v, want %d", i, bal["posted"], posted[i])
		}
		st := e.Do("GET", fmt.Sprintf("/v1/ledgers/%s/accounts/u%d/entries?limit=1000", l, i), ledgertest.AdminKey, nil).Expect(t, 200).JSON()
		if fmt.Sprint(st["closing_balance"]) != fmt.Sprint(posted[i]) {
			t.Fatalf("u%d statement closing %v, want %d", i, st["closing_balance"], posted[i])
		}
	}
	// Replays of the batch items come back from the stored rows.
	e.Do("POST", "/v1/ledgers/"+l+"/transactions/batch", ledgertest.AdminKey, map[string]any{"transactions": items}).Expect(t, 200)
	if got := e.Do("GET", "/v1/ledgers/"+l, ledgertest.AdminKey, nil).JSON()["last_sequence"]; fmt.Sprint(got) != "300" {
		t.Fatalf("last_sequence %v after replaying the batch", got)
	}
}
