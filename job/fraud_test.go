package job_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/prometheus/client_golang/prometheus"
)

func fraudPath(l string) string { return "/v1/ledgers/" + l + "/fraud-rules" }

// txRisk returns transaction id's risk member, or nil before it is scored.
func txRisk(t *testing.T, e *ledgertest.Env, l, id string) map[string]any {
	t.Helper()
	r, _ := e.Do("GET", "/v1/ledgers/"+l+"/transactions/"+id, admin, nil).Expect(t, 200).JSON()["risk"].(map[string]any)
	return r
}

func accountStatus(t *testing.T, e *ledgertest.Env, l, id string) string {
	t.Helper()
	return e.Do("GET", "/v1/ledgers/"+l+"/accounts/"+id, admin, nil).Expect(t, 200).JSON()["status"].(string)
}

// eventsOf lists the ledger's events of type typ.
func eventsOf(t *testing.T, e *ledgertest.Env, l, typ string) []map[string]any {
	t.Helper()
	m := e.Do("GET", "/v1/ledgers/"+l+"/events?type="+typ+"&limit=1000", admin, nil).Expect(t, 200).JSON()
	var out []map[string]any
	for _, ev := range m["data"].([]any) {
		out = append(out, ev.(map[string]any)["data"].(map[string]any))
	}
	return out
}

func labelled(t *testing.T, reg *prometheus.Registry, name, ledger string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "ledger" && lp.GetValue() == ledger {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestFraudRulesAPI: a new ledger has every rule off; a PUT fills in the
// documented defaults of what it leaves out and is audited; malformed
// rules are 422 with field paths; the routes are a ledger admin's.
func TestFraudRulesAPI(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-api")
	got := e.Do("GET", fraudPath(l), admin, nil).Expect(t, 200).JSON()
	for _, k := range []string{"velocity", "large_amount", "new_account", "freeze_score"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("new ledger: %s = %v, want null", k, v)
		}
	}
	put := e.Do("PUT", fraudPath(l), admin, map[string]any{"velocity": map[string]any{"max_debits": 5},
		"large_amount": nil, "new_account": map[string]any{}}).Expect(t, 200).JSON()
	got = e.Do("GET", fraudPath(l), admin, nil).Expect(t, 200).JSON()
	want := `map[freeze_score:80 large_amount:<nil> new_account:map[amount_over:100000 max_age_seconds:86400] velocity:map[max_debits:5 window_seconds:60]]`
	if fmt.Sprint(got) != want || fmt.Sprint(put) != want {
		t.Fatalf("rules after PUT: %v (answer %v), want %s", got, put, want)
	}
	e.Do("PUT", fraudPath(l), admin, map[string]any{"freeze_score": nil}).Expect(t, 200)
	if got := e.Do("GET", fraudPath(l), admin, nil).Expect(t, 200).JSON(); got["velocity"] != nil || got["freeze_score"] != nil {
		t.Fatalf("rules after PUT of nothing but null: %v", got)
	}

	for _, c := range []struct {
		body   any
		fields []string
	}{
		{map[string]any{"velocity": map[string]any{"max_debits": 0, "window_seconds": 86401}, "freeze_score": 101},
			[]string{"velocity.max_debits", "velocity.window_seconds", "freeze_score"}},
		{map[string]any{"large_amount": map[string]any{"multiple_of_median": "ten", "min_history": 1.5}},
			[]string{"large_amount.multiple_of_median", "large_amount.min_history"}},
		{map[string]any{"new_account": map[string]any{"amount_over": -1, "max_age_seconds": 0}},
			[]string{"new_account.max_age_seconds", "new_account.amount_over"}},
		{map[string]any{"velocity": 20, "colour": "red"}, []string{"velocity", "colour"}},
	} {
		r := e.Do("PUT", fraudPath(l), admin, c.body).Expect(t, 422, "validation_failed")
		var fields []string
		for _, f := range r.JSON()["errors"].([]any) {
			fields = append(fields, f.(map[string]any)["field"].(string))
		}
		for _, f := range c.fields {
			if !strings.Contains(" "+strings.Join(fields, " ")+" ", " "+f+" ") {
				t.Errorf("PUT %v: field errors %v lack %s", c.body, fields, f)
			}
		}
	}

	wk := e.Key(l, "write")
	e.Do("PUT", fraudPath(l), wk, map[string]any{}).Expect(t, 403, "forbidden")
	e.Do("GET", fraudPath(l), wk, nil).Expect(t, 403, "forbidden")

	audit := e.Do("GET", "/v1/ledgers/"+l+"/audit?limit=1000", admin, nil).Expect(t, 200).JSON()
	var updates, refused int
	for _, a := range audit["data"].([]any) {
		m := a.(map[string]any)
		if m["action"] == "fraud_rules.update" && m["target"] == fraudPath(l) {
			if fmt.Sprint(m["status"]) == "403" {
				refused++
			} else {
				updates++
			}
		}
	}
	if updates != 2 || refused != 1 {
		t.Errorf("audit: %d fraud_rules.update entries and %d refusals, want 2 and 1", updates, refused)
	}
}

// TestFraudVelocityBurstFreezes: the (max_debits+1)th debit of a bounded
// account within the window is flagged within seconds of its commit, the
// account frozen (with the rule in the event's reason) and its next debit
// refused; the debits before it carry a zero risk. An unbounded account's
// burst is scored and flagged but never frozen.
func TestFraudVelocityBurstFreezes(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-burst")
	e.Account(l, "payer", "USD", ledgertest.Int64(0))
	e.Account(l, "shop", "USD", ledgertest.Int64(0))
	move(t, e, l, "world", "payer", 1_000)
	before := move(t, e, l, "world", "a", 1) // committed before the rules: never scored
	e.Do("PUT", fraudPath(l), admin, map[string]any{"velocity": map[string]any{"max_debits": 5, "window_seconds": 60},
		"freeze_score": 80}).Expect(t, 200)
	reg := prometheus.NewRegistry()
	runWorker(t, e, job.Config{Registerer: reg})

	var ids []string
	for range 5 {
		ids = append(ids, move(t, e, l, "payer", "shop", 10))
	}
	sixth := move(t, e, l, "payer", "shop", 10)
	committed := time.Now()
	waitFor(t, 10*time.Second, "payer frozen", func() bool { return accountStatus(t, e, l, "payer") == "frozen" })
	t.Logf("frozen %v after the commit of the 6th debit", time.Since(committed).Round(time.Millisecond))
	e.Transfer(l, "payer", "shop", 1, "USD").Expect(t, 422, "account_frozen")
	e.Transfer(l, "shop", "payer", 1, "USD").Expect(t, 201) // credits still go through

	for i, id := range ids {
		if k := txRisk(t, e, l, id); k == nil || fmt.Sprint(k["score"]) != "0" || len(k["reasons"].([]any)) != 0 {
			t.Errorf("debit %d risk %v, want score 0 and no reasons", i+1, k)
		}
	}
	k := txRisk(t, e, l, sixth)
	if k == nil || fmt.Sprint(k["score"]) != "80" {
		t.Fatalf("6th debit risk %v, want score 80", k)
	}
	reason := k["reasons"].([]any)[0].(map[string]any)
	if reason["rule"] != "velocity" || reason["account"] != "payer" || !strings.Contains(reason["detail"].(string), "6 debits") {
		t.Errorf("6th debit reason %v", reason)
	}
	if k := txRisk(t, e, l, before); k != nil {
		t.Errorf("transaction committed before the rules has risk %v", k)
	}
	// The list shows the risk too.
	list := e.Do("GET", "/v1/ledgers/"+l+"/transactions?account=payer&limit=100", admin, nil).Expect(t, 200).JSON()
	var listed int
	for _, tx := range list["data"].([]any) {
		m := tx.(map[string]any)
		if m["id"] == sixth && m["risk"].(map[string]any)["score"] != nil {
			listed++
		}
	}
	if listed != 1 {
		t.Errorf("the list does not show the 6th debit's risk: %v", list["data"])
	}

	flagged := eventsOf(t, e, l, "transaction.flagged")
	if len(flagged) != 1 || flagged[0]["id"] != sixth || flagged[0]["risk"] == nil {
		t.Fatalf("transaction.flagged events %v, want one for %s with its risk", flagged, sixth)
	}
	frozen := eventsOf(t, e, l, "account.frozen")
	if len(frozen) != 1 || frozen[0]["id"] != "payer" || !strings.Contains(fmt.Sprint(frozen[0]["reason"]), "velocity") ||
		!strings.Contains(fmt.Sprint(frozen[0]["reason"]), sixth) {
		t.Fatalf("account.frozen events %v, want payer's naming the rule and the transaction", frozen)
	}

	// An unbounded account: scored and flagged, never frozen. world was
	// debited twice before the rules were set: the log's debits count
	// whether or not they were scored, so its 4th debit here is the 6th
	// in the window.
	var last string
	for i := range 4 {
		last = move(t, e, l, "world", "a", 1)
		if i == 2 {
			waitFor(t, 10*time.Second, "world's 3rd debit scored", func() bool { return txRisk(t, e, l, last) != nil })
			if k := txRisk(t, e, l, last); fmt.Sprint(k["score"]) != "0" {
				t.Errorf("world's 5th debit in the window: risk %v, want 0", k)
			}
		}
	}
	waitFor(t, 10*time.Second, "world's burst scored", func() bool { return txRisk(t, e, l, last) != nil })
	if k := txRisk(t, e, l, last); fmt.Sprint(k["score"]) != "80" {
		t.Errorf("world's 6th debit in the window: risk %v, want 80", k)
	}
	if s := accountStatus(t, e, l, "world"); s != "active" {
		t.Errorf("unbounded account is %s", s)
	}
	if n := len(eventsOf(t, e, l, "account.frozen")); n != 1 {
		t.Errorf("%d account.frozen events, want still 1", n)
	}
	waitFor(t, 10*time.Second, "the scoring backlog sampled", func() bool {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if mf.GetName() == "ledgerd_tail_lag_seconds" && lp.GetName() == "consumer" && lp.GetValue() == "fraud" {
						return true
					}
				}
			}
		}
		return false
	})
	if n := labelled(t, reg, "ledgerd_fraud_flags_total", l); n != 2 {
		t.Errorf("ledgerd_fraud_flags_total{ledger=%q} = %v, want 2", l, n)
	}
	if n := labelled(t, reg, "ledgerd_fraud_scored_total", l); n != 11 {
		t.Errorf("ledgerd_fraud_scored_total{ledger=%q} = %v, want 11", l, n)
	}
}

// TestFraudWorkerRestartMidBurst: a worker stopped after scoring part of
// a burst, and a new one started after the rest committed, still freezes
// at the (max_debits+1)th debit: the history comes from the log, not from
// what a worker saw.
func TestFraudWorkerRestartMidBurst(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-restart")
	e.Account(l, "payer", "USD", ledgertest.Int64(0))
	move(t, e, l, "world", "payer", 1_000)
	e.Do("PUT", fraudPath(l), admin, map[string]any{"velocity": map[string]any{"max_debits": 5, "window_seconds": 300}}).Expect(t, 200)

	stop := runWorker(t, e, job.Config{})
	var third string
	for range 3 {
		third = move(t, e, l, "payer", "world", 10)
	}
	waitFor(t, 10*time.Second, "the first three debits scored", func() bool { return txRisk(t, e, l, third) != nil })
	stop()
	var fifth, sixth string
	for i := range 3 {
		id := move(t, e, l, "payer", "world", 10)
		if i == 1 {
			fifth = id
		}
		sixth = id
	}
	time.Sleep(200 * time.Millisecond)
	if k := txRisk(t, e, l, sixth); k != nil {
		t.Fatalf("scored with no worker running: %v", k)
	}
	runWorker(t, e, job.Config{})
	waitFor(t, 10*time.Second, "payer frozen after the restart", func() bool { return accountStatus(t, e, l, "payer") == "frozen" })
	if k := txRisk(t, e, l, fifth); fmt.Sprint(k["score"]) != "0" {
		t.Errorf("5th debit risk %v, want 0", k)
	}
	if k := txRisk(t, e, l, sixth); fmt.Sprint(k["score"]) != "80" {
		t.Errorf("6th debit risk %v, want 80", k)
	}
	if n := len(eventsOf(t, e, l, "transaction.flagged")); n != 1 {
		t.Errorf("%d transaction.flagged events, want 1", n)
	}
}

// TestFraudNormalWorkloadFlagsNothing: many accounts moving amounts near
// their median, each within the velocity limit, with every rule on: every
// posted transaction is scored, none flagged, no account frozen.
func TestFraudNormalWorkloadFlagsNothing(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-normal")
	// 200 accounts, 4,000 transfers posted in batches of 100 (a few
	// thousand a second here); sources round robin: 20 debits each, the
	// most the velocity rule allows in a minute.
	const accounts, transfers, per = 200, 4_000, 100
	batch := func(items []map[string]any) {
		r := e.Do("POST", "/v1/ledgers/"+l+"/transactions/batch", admin, map[string]any{"transactions": items}).Expect(t, 200)
		for _, it := range r.JSON()["results"].([]any) {
			if m := it.(map[string]any); m["status"] != nil && fmt.Sprint(m["status"]) != "201" {
				t.Errorf("batch item %v", m)
			}
		}
	}
	posting := func(from, to string, amount int64) map[string]any {
		return map[string]any{"postings": []map[string]any{{"source": from, "destination": to, "amount": amount, "asset": "USD"}}}
	}
	var funding []map[string]any
	for i := range accounts {
		id := fmt.Sprintf("acc-%03d", i)
		e.Account(l, id, "USD", ledgertest.Int64(0))
		funding = append(funding, posting("world", id, 1_000_000))
	}
	batch(funding)
	e.Do("PUT", fraudPath(l), admin, map[string]any{
		"velocity":     map[string]any{"max_debits": 20, "window_seconds": 60},
		"large_amount": map[string]any{"multiple_of_median": 10, "min_history": 5},
		"new_account":  map[string]any{"max_age_seconds": 86400, "amount_over": 100000},
		"freeze_score": 80}).Expect(t, 200)
	reg := prometheus.NewRegistry()
	runWorker(t, e, job.Config{Registerer: reg})

	var wg sync.WaitGroup
	start := time.Now()
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for b := g; b < transfers/per; b += 4 {
				items := make([]map[string]any, 0, per)
				for i := b * per; i < (b+1)*per; i++ {
					from := i % accounts
					to := (from + 1 + rng.IntN(accounts-1)) % accounts
					items = append(items, posting(fmt.Sprintf("acc-%03d", from), fmt.Sprintf("acc-%03d", to), 80+rng.Int64N(41)))
				}
				batch(items)
			}
		})
	}
	wg.Wait()
	t.Logf("%d transfers in %v", transfers, time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "every transfer scored", func() bool {
		return labelled(t, reg, "ledgerd_fraud_scored_total", l) >= transfers
	})
	t.Logf("every transfer scored %v after the first was posted", time.Since(start).Round(time.Millisecond))
	if n := labelled(t, reg, "ledgerd_fraud_flags_total", l); n != 0 {
		t.Errorf("ledgerd_fraud_flags_total = %v, want 0", n)
	}
	if evs := eventsOf(t, e, l, "transaction.flagged"); len(evs) != 0 {
		t.Errorf("%d transaction.flagged events, first %v", len(evs), evs[0])
	}
	if evs := eventsOf(t, e, l, "account.frozen"); len(evs) != 0 {
		t.Errorf("%d account.frozen events", len(evs))
	}
	page := e.Do("GET", "/v1/ledgers/"+l+"/transactions?limit=1000", admin, nil).Expect(t, 200).JSON()["data"].([]any)
	scored := 0
	for _, tx := range page {
		if k, ok := tx.(map[string]any)["risk"].(map[string]any); ok {
			scored++
			if fmt.Sprint(k["score"]) != "0" {
				t.Errorf("transaction %v scored %v", tx.(map[string]any)["id"], k)
			}
		}
	}
	if scored == 0 {
		t.Error("no listed transaction shows a risk")
	}
}

// TestFraudRiskNotHiddenByCache: a transaction that can no longer change
// (here: reversed) read before it is scored is not kept in the read cache
// without its risk: once scored, reads show the risk.
func TestFraudRiskNotHiddenByCache(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-cache")
	e.Do("PUT", fraudPath(l), admin, map[string]any{"new_account": map[string]any{"max_age_seconds": 3600, "amount_over": 10}}).Expect(t, 200)
	body := map[string]any{"postings": []map[string]any{{"source": "a", "destination": "world", "amount": 50, "asset": "USD"}},
		"reference": "ref-1"}
	id := e.Do("POST", "/v1/ledgers/"+l+"/transactions", admin, body).Expect(t, 201).JSON()["id"].(string) // a is new: 50 > 10
	e.Do("POST", "/v1/ledgers/"+l+"/transactions/"+id+"/reverse", admin, nil).Expect(t, 200)
	for range 2 {
		if k := txRisk(t, e, l, id); k != nil {
			t.Fatalf("risk %v with no worker running", k)
		}
	}
	runWorker(t, e, job.Config{})
	waitFor(t, 10*time.Second, "the reversed transaction's risk", func() bool { return txRisk(t, e, l, id) != nil })
	k := txRisk(t, e, l, id)
	if fmt.Sprint(k["score"]) != "50" || k["reasons"].([]any)[0].(map[string]any)["rule"] != "new_account" {
		t.Fatalf("risk %v, want 50 for new_account", k)
	}
	// Every list query shows it: by reference, by account, the whole log.
	for _, q := range []string{"reference=ref-1", "account=a", "limit=10"} {
		m := e.Do("GET", "/v1/ledgers/"+l+"/transactions?"+q, admin, nil).Expect(t, 200).JSON()
		first := m["data"].([]any)[0].(map[string]any)
		if first["id"] != id || fmt.Sprint(first["risk"]) != fmt.Sprint(k) {
			t.Errorf("list ?%s: first %v, want %s with risk %v", q, first, id, k)
		}
	}
}

// TestFraudTwoWorkersShareLedger: two workers take a ledger's steps in
// turn; each step judges from the log and the cursor (a worker's memory
// of its own last step is not used after the other moved on), so every
// score is the one the whole log implies.
func TestFraudTwoWorkersShareLedger(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "fraud-shared")
	e.Do("PUT", fraudPath(l), admin, map[string]any{"velocity": map[string]any{"max_debits": 10, "window_seconds": 600}}).Expect(t, 200)
	runWorker(t, e, job.Config{Poll: 5 * time.Millisecond, RelayBatch: 3})
	runWorker(t, e, job.Config{Poll: 5 * time.Millisecond, RelayBatch: 3})
	var ids []string
	for range 30 {
		ids = append(ids, move(t, e, l, "world", "a", 1)) // world is unbounded: never frozen
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "every debit scored", func() bool { return txRisk(t, e, l, ids[len(ids)-1]) != nil })
	for i, id := range ids {
		want := "0"
		if i+1 > 10 {
			want = "80"
		}
		if k := txRisk(t, e, l, id); k == nil || fmt.Sprint(k["score"]) != want {
			t.Errorf("debit %d: risk %v, want score %s", i+1, k, want)
		}
	}
}
