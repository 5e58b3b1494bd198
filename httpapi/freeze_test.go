package httpapi_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
)

func freeze(c client, ledger, account, key, status string, reason any) *ledgertest.Response {
	c.t.Helper()
	body := map[string]any{"status": status}
	if reason != nil {
		body["reason"] = reason
	}
	return c.do("PATCH", accountsPath(ledger)+"/"+account, key, body)
}

// TestFreeze: a frozen account refuses every debit (transfer, hold,
// capture, reversal, batch item) with 422 account_frozen naming it, takes
// credits, voids go through; the status shows on the account; freezing
// needs an admin key and emits account.frozen / account.unfrozen with the
// reason; a stored account_frozen replays after the thaw.
func TestFreeze(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("frz")
	write, adm := c.key(l, "write"), c.key(l, "admin")
	zero := int64(0)
	c.account(l, "world", "USD", nil)
	c.account(l, "alice", "USD", &zero)
	c.account(l, "bob", "USD", &zero)
	c.fund(l, "world", "alice", 1000, "USD")
	paid := c.fund(l, "alice", "bob", 10, "USD")
	back := c.fund(l, "bob", "alice", 5, "USD")
	hold := c.expect(201, "", "POST", txPath(l), write, merge(tx(posting("alice", "bob", 50, "USD")), "pending", true)).JSON()
	hold2 := c.expect(201, "", "POST", txPath(l), write, merge(tx(posting("alice", "bob", 20, "USD")), "pending", true)).JSON()

	if s := str(c.getAccount(l, "alice"), "status"); s != "active" {
		t.Fatalf("status %q before the freeze", s)
	}
	freeze(c, l, "alice", write, "frozen", nil).Expect(t, 403, "forbidden")
	c.expect(403, "forbidden", "PATCH", accountsPath(l)+"/alice", write, map[string]any{"status": "frozen", "metadata": map[string]any{"k": "v"}})
	c.expect(422, "validation_failed", "PATCH", accountsPath(l)+"/alice", adm, map[string]any{"status": "closed"})
	c.expect(422, "validation_failed", "PATCH", accountsPath(l)+"/alice", adm, map[string]any{"status": "frozen", "reason": 7})
	c.expect(200, "", "PATCH", accountsPath(l)+"/alice", write, map[string]any{"metadata": map[string]any{"k": "v"}})
	if s := str(c.getAccount(l, "alice"), "status"); s != "active" {
		t.Fatalf("status %q after refused freezes", s)
	}
	m := freeze(c, l, "alice", adm, "frozen", "chargeback").Expect(t, 200).JSON()
	if str(m, "status") != "frozen" || str(c.getAccount(l, "alice"), "status") != "frozen" {
		t.Fatalf("frozen account %v", m)
	}

	frozen := func(r *ledgertest.Response) {
		t.Helper()
		r.Expect(t, 422, "account_frozen")
		if d := str(r.JSON(), "detail"); d != "account alice is frozen" {
			t.Fatalf("detail %q does not name the account", d)
		}
	}
	before := c.snapshot(l, "alice", "bob")
	frozen(c.do("POST", txPath(l), write, tx(posting("alice", "bob", 1, "USD"))))
	frozen(c.do("POST", txPath(l), write, merge(tx(posting("alice", "bob", 1, "USD")), "pending", true)))
	frozen(c.do("POST", txPath(l)+"/"+str(hold, "id")+"/post", write, nil))
	frozen(c.do("POST", txPath(l)+"/"+str(back, "id")+"/reverse", write, nil))
	frozen(c.do("POST", txPath(l), write, tx(posting("alice", "bob", 1, "USD")), "Idempotency-Key", "frz-1"))
	r := c.expect(200, "", "POST", txPath(l)+"/batch", write, batchOf(false, tx(posting("alice", "bob", 1, "USD"))))
	if code := fmt.Sprint(r.JSON()["results"].([]any)[0].(map[string]any)["error"].(map[string]any)["code"]); code != "account_frozen" {
		t.Fatalf("batch item: %s", r.Body)
	}
	c.expect(422, "account_frozen", "POST", txPath(l)+"/batch", write, batchOf(true, tx(posting("world", "bob", 1, "USD")), tx(posting("alice", "bob", 1, "USD"))))
	c.unchanged(l, before)

	// Credits and releases still go through.
	c.expect(201, "", "POST", txPath(l), write, tx(posting("world", "alice", 5, "USD")))
	c.expect(200, "", "POST", txPath(l)+"/"+str(hold2, "id")+"/void", write, nil)
	// A reversal that credits the frozen account: the debit is bob's.
	c.expect(200, "", "POST", txPath(l)+"/"+str(paid, "id")+"/reverse", adm, map[string]any{"force": true})

	freeze(c, l, "alice", adm, "active", nil).Expect(t, 200)
	if s := str(c.getAccount(l, "alice"), "status"); s != "active" {
		t.Fatalf("status %q after the thaw", s)
	}
	c.expect(201, "", "POST", txPath(l), write, tx(posting("alice", "bob", 1, "USD")))
	c.expect(200, "", "POST", txPath(l)+"/"+str(hold, "id")+"/post", write, nil)
	// The stored rejection replays, even though the account now may pay.
	r = c.do("POST", txPath(l), write, tx(posting("alice", "bob", 1, "USD")), "Idempotency-Key", "frz-1").Expect(t, 422, "account_frozen")
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("account_frozen was not replayed")
	}

	p := getEvents(c, l, adm, "?type=account.frozen&type=account.unfrozen")
	if len(p.Data) != 2 || p.Data[0].Type != "account.frozen" || p.Data[1].Type != "account.unfrozen" {
		t.Fatalf("events %+v", p.Data)
	}
	var d0, d1 map[string]any
	_ = json.Unmarshal(p.Data[0].Data, &d0)
	_ = json.Unmarshal(p.Data[1].Data, &d1)
	if d0["id"] != "alice" || d0["status"] != "frozen" || d0["reason"] != "chargeback" || d1["status"] != "active" || d1["reason"] != nil {
		t.Fatalf("event data %s / %s", p.Data[0].Data, p.Data[1].Data)
	}
	if _, ok := d1["reason"]; !ok {
		t.Fatalf("unfrozen event without reason: %s", p.Data[1].Data)
	}
	// The same status again changes nothing and emits nothing.
	freeze(c, l, "alice", adm, "active", nil).Expect(t, 200)
	if p := getEvents(c, l, adm, "?type=account.unfrozen"); len(p.Data) != 1 {
		t.Fatalf("%d unfrozen events", len(p.Data))
	}
}

// TestFreezeRace: transfers racing a freeze never commit a debit of the
// frozen account after the freeze: every accepted debit has a sequence at
// or below the ledger's last sequence when the freeze committed, which is
// the after_sequence of its account.frozen event.
func TestFreezeRace(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("frzrace")
	write, adm := c.key(l, "write"), c.key(l, "admin")
	c.account(l, "world", "USD", nil)
	c.account(l, "alice", "USD", nil)
	c.account(l, "bob", "USD", nil)
	c.fund(l, "world", "alice", 1_000_000, "USD")

	const workers, perWorker = 8, 60
	var mu sync.Mutex
	var accepted []int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perWorker {
				var r *ledgertest.Response
				var err error
				if w%2 == 0 {
					r, err = c.e.TryDo("POST", txPath(l), write, tx(posting("alice", "bob", 1, "USD")))
				} else {
					r, err = c.e.TryDo("POST", txPath(l)+"/batch", write, batchOf(false, tx(posting("alice", "bob", 1, "USD")), tx(posting("world", "bob", 1, "USD"))))
				}
				if err == nil {
					err = checkAnswer(r)
				}
				if err != nil {
					errs <- err
					return
				}
				var txs []map[string]any
				switch {
				case r.Status == 201:
					txs = append(txs, r.JSON())
				case r.Status == 200:
					for _, it := range r.JSON()["results"].([]any) {
						if m := it.(map[string]any); fmt.Sprint(m["status"]) == "201" {
							txs = append(txs, m["transaction"].(map[string]any))
						}
					}
				case r.Code() != "account_frozen":
					errs <- fmt.Errorf("worker %d item %d: %d %s", w, i, r.Status, r.Body)
					return
				}
				mu.Lock()
				for _, m := range txs {
					if m["postings"].([]any)[0].(map[string]any)["source"] == "alice" {
						accepted = append(accepted, num(t, m["sequence"]))
					}
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	for c.lastSequence(l) < 40 {
	}
	freeze(c, l, "alice", adm, "frozen", "race").Expect(t, 200)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	at := frozenAt(t, c, l)
	last := int64(0)
	for _, s := range accepted {
		if s > at {
			t.Errorf("debit of alice at sequence %d, after the freeze at %d", s, at)
		}
		last = max(last, s)
	}
	if len(accepted) == 0 || c.lastSequence(l) <= at {
		t.Fatalf("no race: %d debits, freeze at %d, last sequence %d", len(accepted), at, c.lastSequence(l))
	}
	t.Logf("%d debits of alice, the last at %d; frozen after %d; ledger at %d", len(accepted), last, at, c.lastSequence(l))
}

// frozenAt is the after_sequence of the ledger's account.frozen event:
// the last sequence committed before the freeze.
func frozenAt(t *testing.T, c client, ledger string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), ledgertest.DirectURL(t, c.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var at int64
	err = conn.QueryRow(t.Context(), `SELECT e.after_sequence FROM events e JOIN ledgers l ON l.id = e.ledger_id
		WHERE l.name = $1 AND e.type = 'account.frozen'`, ledger).Scan(&at)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
