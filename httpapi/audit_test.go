package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

type auditEntry struct {
	ID        string  `json:"id"`
	At        string  `json:"at"`
	Actor     string  `json:"actor"`
	RequestID string  `json:"request_id"`
	Action    string  `json:"action"`
	Target    string  `json:"target"`
	Status    int     `json:"status"`
	Hash      *string `json:"hash"`
	PrevHash  *string `json:"prev_hash"`
}

// auditLog pages through GET …/audit and returns every entry and the raw
// JSON of the list (for the verification script).
func auditLog(c client, ledger, key string) ([]auditEntry, []byte) {
	c.t.Helper()
	var all []auditEntry
	var raw []json.RawMessage
	after := ""
	for range 100 {
		q := "?limit=3"
		if after != "" {
			q += "&after=" + after
		}
		r := c.expect(200, "", "GET", "/v1/ledgers/"+ledger+"/audit"+q, key, nil)
		var p struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			c.t.Fatal(err)
		}
		for _, d := range p.Data {
			var e auditEntry
			if err := json.Unmarshal(d, &e); err != nil {
				c.t.Fatal(err)
			}
			all, raw = append(all, e), append(raw, d)
		}
		if p.NextCursor == nil {
			b, _ := json.Marshal(raw)
			return all, b
		}
		after = *p.NextCursor
	}
	c.t.Fatal("audit log does not end")
	return nil, nil
}

// TestAudit: every state-changing request and every 403 has an entry
// (actor, request id, action, target, status), rejections and replays
// have none; entries show hash null until chained; the chain verifies with
// docs/audit_verify.py; write keys may not read the log.
func TestAudit(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("aud")
	write, adm := c.key(l, "write"), c.key(l, "admin")
	writeID := strings.Split(write, "_")[1]
	zero := int64(0)
	c.account(l, "world", "USD", nil)
	c.account(l, "alice", "USD", &zero)
	tr := c.do("POST", txPath(l), write, tx(posting("world", "alice", 10, "USD")), "Idempotency-Key", "k1").Expect(t, 201)
	c.do("POST", txPath(l), write, tx(posting("world", "alice", 10, "USD")), "Idempotency-Key", "k1").Expect(t, 200) // replay
	c.expect(422, "insufficient_funds", "POST", txPath(l), write, tx(posting("alice", "world", 99, "USD")))
	c.expect(200, "", "POST", txPath(l)+"/batch", write, batchOf(false, tx(posting("world", "alice", 1, "USD"))))
	forbidden := c.expect(403, "forbidden", "PATCH", accountsPath(l)+"/alice", write, map[string]any{"status": "frozen"})
	c.expect(403, "forbidden", "GET", "/v1/ledgers/"+l+"/audit", write, nil)
	c.expect(200, "", "PATCH", accountsPath(l)+"/alice", adm, map[string]any{"status": "frozen", "reason": "test"})

	entries, _ := auditLog(c, l, adm)
	type row struct{ actor, action, target string }
	want := []struct {
		row
		status int
	}{
		{row{"bootstrap", "ledger.create", "/v1/ledgers/aud"}, 201},
		{row{"bootstrap", "api_key.create", "/v1/api-keys/"}, 201},
		{row{"bootstrap", "api_key.create", "/v1/api-keys/"}, 201},
		{row{"bootstrap", "account.create", "/v1/ledgers/aud/accounts/world"}, 201},
		{row{"bootstrap", "account.create", "/v1/ledgers/aud/accounts/alice"}, 201},
		{row{writeID, "transaction.create", "/v1/ledgers/aud/transactions/" + str(tr.JSON(), "id")}, 201},
		{row{writeID, "transaction.batch", "/v1/ledgers/aud/transactions/batch"}, 200},
		{row{writeID, "account.patch", "/v1/ledgers/aud/accounts/alice"}, 403},
		{row{writeID, "forbidden", "/v1/ledgers/aud/audit"}, 403},
		{row{strings.Split(adm, "_")[1], "account.patch", "/v1/ledgers/aud/accounts/alice"}, 200},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		w := want[i]
		if e.Actor != w.actor || e.Action != w.action || !strings.HasPrefix(e.Target, w.target) || e.Status != w.status ||
			e.Hash != nil || e.PrevHash != nil || !timeRE.MatchString(e.At) || e.RequestID == "" {
			t.Errorf("entry %d: %+v, want %+v", i, e, w)
		}
	}
	if entries[7].RequestID != forbidden.Header.Get("Request-Id") || entries[5].RequestID != tr.Header.Get("Request-Id") {
		t.Errorf("request ids %q %q", entries[7].RequestID, entries[5].RequestID)
	}
	c.do("GET", "/v1/ledgers/"+l+"/audit?after=aud_999999", adm, nil).Expect(t, 422, "validation_failed")
	c.do("GET", "/v1/ledgers/"+l+"/audit?cursor=x", adm, nil).Expect(t, 422, "validation_failed")

	// Webhook changes are recorded too.
	hook := c.expect(201, "", "POST", "/v1/ledgers/"+l+"/webhooks", adm, map[string]any{"url": "https://8.8.8.8/x"}).JSON()
	c.expect(204, "", "DELETE", "/v1/ledgers/"+l+"/webhooks/"+str(hook, "id"), adm, nil)
	c.expect(404, "", "DELETE", "/v1/ledgers/"+l+"/webhooks/"+str(hook, "id"), adm, nil)
	entries, _ = auditLog(c, l, adm)
	hookPath := "/v1/ledgers/aud/webhooks/" + str(hook, "id")
	if n := len(entries); n != len(want)+2 || entries[n-2].Action != "webhook.create" || entries[n-2].Target != hookPath ||
		entries[n-1].Action != "webhook.delete" || entries[n-1].Target != hookPath || entries[n-1].Status != 204 {
		t.Fatalf("webhook entries: %+v", entries[len(want):])
	}

	// A key's revocation is in its ledger's log (the route names none).
	c.expect(204, "", "DELETE", "/v1/api-keys/"+writeID, adm, nil)
	entries, _ = auditLog(c, l, adm)
	if e := entries[len(entries)-1]; e.Action != "api_key.revoke" || e.Target != "/v1/api-keys/"+writeID || e.Status != 204 {
		t.Fatalf("revocation entry %+v", e)
	}

	chainAll(t, c.e.DB)
	entries, raw := auditLog(c, l, adm)
	prev := strings.Repeat("0", 64)
	for _, e := range entries {
		if e.Hash == nil || e.PrevHash == nil || *e.PrevHash != prev {
			t.Fatalf("entry %s not chained onto %s: %+v", e.ID, prev, e)
		}
		prev = *e.Hash
	}
	out := runVerifyScript(t, raw)
	if !strings.HasPrefix(out, fmt.Sprintf("ok: %d chained entries, head %s", len(entries), prev)) {
		t.Fatalf("script: %s", out)
	}
	// The script catches a change to any field.
	tampered := strings.Replace(string(raw), `"status":200`, `"status":201`, 1)
	if out := runVerifyScript(t, []byte(tampered)); !strings.HasPrefix(out, "MISMATCH at "+entries[6].ID) {
		t.Fatalf("script on a tampered list: %s", out)
	}
}

func chainAll(t *testing.T, db *postgres.DB) {
	t.Helper()
	for {
		n, err := db.ChainAudit(t.Context(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// runVerifyScript runs docs/audit_verify.py on a list of entries.
func runVerifyScript(t *testing.T, entries []byte) string {
	t.Helper()
	cmd := exec.Command("python3", "../docs/audit_verify.py", "-")
	cmd.Stdin = strings.NewReader(string(entries))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Skipf("python3: %v", err)
	}
	return string(out)
}

// TestVerifyTamper: after a mixed concurrent load the ledger verifies
// clean; a change made in SQL to an audit row, an entry's amount or an
// account's balance is named exactly by Verify (what `ledgerd verify`
// prints).
func TestVerifyTamper(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("tamper")
	write, adm := c.key(l, "write"), c.key(l, "admin")
	c.account(l, "world", "USD", nil)
	for i := range 4 {
		c.account(l, fmt.Sprintf("u%d", i), "USD", nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me, other := fmt.Sprintf("u%d", w), fmt.Sprintf("u%d", (w+1)%4)
			for i := range 25 {
				var r *ledgertest.Response
				var err error
				switch i % 5 {
				case 0:
					r, err = c.e.TryDo("POST", txPath(l), write, tx(posting("world", me, 100, "USD")))
				case 1:
					r, err = c.e.TryDo("POST", txPath(l), write, merge(tx(posting(me, other, 7, "USD")), "pending", true))
					if err == nil && r.Status == 201 && w%2 == 0 {
						r, err = c.e.TryDo("POST", txPath(l)+"/"+str(r.JSON(), "id")+"/void", write, nil)
					} else if err == nil && r.Status == 201 && i%3 != 0 {
						r, err = c.e.TryDo("POST", txPath(l)+"/"+str(r.JSON(), "id")+"/post", write, nil)
					}
				case 2:
					r, err = c.e.TryDo("POST", txPath(l)+"/batch", write, batchOf(w%2 == 0, tx(posting(me, other, 3, "USD")), tx(posting(other, me, 1, "USD"))))
				case 3:
					r, err = c.e.TryDo("POST", txPath(l), write, tx(posting(me, "world", 5, "USD")))
					if err == nil && r.Status == 201 {
						r, err = c.e.TryDo("POST", txPath(l)+"/"+str(r.JSON(), "id")+"/reverse", write, nil)
					}
				case 4:
					r, err = c.e.TryDo("PATCH", accountsPath(l)+"/"+me, write, map[string]any{"min_balance": 0})
				}
				if err == nil {
					err = checkAnswer(r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// A chainer at work during the load, as in production.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				_, _ = c.e.DB.ChainAudit(t.Context(), 7)
			}
		}
	}()
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := c.e.DB.Verify(t.Context(), l); err != nil {
		t.Fatalf("unchained tail: %v", err)
	}
	chainAll(t, c.e.DB)
	if n, err := c.e.DB.Verify(t.Context(), ""); err != nil || n != 1 {
		t.Fatalf("untampered ledger: %d, %v", n, err)
	}
	entries, _ := auditLog(c, l, adm)
	if len(entries) < 100 {
		t.Fatalf("only %d audit entries after the load", len(entries))
	}

	conn, err := pgx.Connect(t.Context(), ledgertest.DirectURL(t, c.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	exec := func(sql string, args ...any) {
		t.Helper()
		if tag, err := conn.Exec(t.Context(), sql, args...); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v %v", sql, tag, err)
		}
	}
	mismatch := func(what string) {
		t.Helper()
		_, err := c.e.DB.Verify(t.Context(), l)
		var m *postgres.Mismatch
		if !errors.As(err, &m) || m.What != what {
			t.Fatalf("Verify: %v; want a mismatch of %q", err, what)
		}
		t.Logf("%v", m)
	}

	// An audit row: its status.
	victim := entries[len(entries)/2]
	pos := strings.TrimPrefix(victim.ID, "aud_")
	exec(`UPDATE audit_log SET status = status + 1 WHERE position = $1::bigint`, pos)
	mismatch("audit entry " + victim.ID)
	exec(`UPDATE audit_log SET status = status - 1 WHERE position = $1::bigint`, pos)

	// An entry's amount: the first posted entry of u2 after its funding.
	var txID string
	var idx int
	err = conn.QueryRow(t.Context(), `SELECT transaction_id::text, posting_index FROM entries
		WHERE account_id = 'u2' AND NOT pending ORDER BY sequence LIMIT 1 OFFSET 1`).Scan(&txID, &idx)
	if err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE entries SET amount = amount + 1 WHERE transaction_id = $1::uuid AND account_id = 'u2'`, txID)
	_, verr := c.e.DB.Verify(t.Context(), l)
	var m *postgres.Mismatch
	if !errors.As(verr, &m) || !strings.Contains(m.What, "entry of account u2 in transaction "+txID) {
		t.Fatalf("Verify after changing an amount: %v", verr)
	}
	t.Logf("%v", m)
	exec(`UPDATE entries SET amount = amount - 1 WHERE transaction_id = $1::uuid AND account_id = 'u2'`, txID)

	// An account's balance: checkpoint the row first, so it is what
	// the API reports, then change it.
	exec(`UPDATE accounts a SET posted = e.posted_after, pending_debits = coalesce(e.pending_debits_after, 0),
		pending_credits = coalesce(e.pending_credits_after, 0), version = e.version
		FROM (SELECT * FROM entries WHERE account_id = 'u3' ORDER BY sequence DESC, posting_index DESC LIMIT 1) e
		WHERE a.id = 'u3' AND a.ledger_id = e.ledger_id`)
	if _, err := c.e.DB.Verify(t.Context(), l); err != nil {
		t.Fatalf("after a faithful checkpoint: %v", err)
	}
	exec(`UPDATE accounts SET posted = posted + 100 WHERE id = 'u3'`)
	mismatch("account u3")
}
