package job_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/webhook"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

const admin = ledgertest.AdminKey

func hooksPath(l string) string { return "/v1/ledgers/" + l + "/webhooks" }

// endpoint registers url on ledger l and returns its id and secret.
func endpoint(t testing.TB, e *ledgertest.Env, l, url string, types ...string) (id, secret string) {
	t.Helper()
	body := map[string]any{"url": url}
	if len(types) > 0 {
		body["event_types"] = types
	}
	m := e.Do("POST", hooksPath(l), admin, body).Expect(t, 201).JSON()
	return m["id"].(string), m["secret"].(string)
}

// transfer posts a transfer and returns its event id.
func transfer(t *testing.T, e *ledgertest.Env, l string) string {
	t.Helper()
	m := e.Transfer(l, "world", "a", 1, "USD").Expect(t, 201).JSON()
	return "evt_" + m["id"].(string)
}

func hold(t *testing.T, e *ledgertest.Env, l string) string {
	t.Helper()
	body := map[string]any{"postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}},
		"pending": true}
	m := e.Do("POST", "/v1/ledgers/"+l+"/transactions", admin, body).Expect(t, 201).JSON()
	return "evt_" + m["id"].(string)
}

func newLedger(t testing.TB, e *ledgertest.Env, name string) string {
	l := e.Ledger(name)
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", nil)
	return l
}

// TestEveryEventDeliveredAndFiltered: every transaction reaches the
// endpoint subscribed to everything, signed, with its data; the filtered
// endpoint gets only its type; the delivery log shows them delivered.
func TestEveryEventDeliveredAndFiltered(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "deliver")
	all, holds := newReceiver(t), newReceiver(t)
	allID, s1 := endpoint(t, e, l, all.URL())
	_, s2 := endpoint(t, e, l, holds.URL(), "transaction.pending")
	all.setSecrets(s1)
	holds.setSecrets(s2)
	startWorker(t, e, job.Config{})

	want := map[string]bool{}
	wantHolds := map[string]bool{}
	for i := range 30 {
		if i%5 == 0 {
			id := hold(t, e, l)
			want[id], wantHolds[id] = true, true
		} else {
			want[transfer(t, e, l)] = true
		}
	}
	waitFor(t, 20*time.Second, "every event at the catch-all endpoint", func() bool { return len(all.ids()) >= len(want) })
	waitFor(t, 20*time.Second, "every hold at the filtered endpoint", func() bool { return len(holds.ids()) >= len(wantHolds) })
	for id := range all.ids() {
		if !want[id] {
			t.Errorf("unexpected event %s", id)
		}
	}
	for id := range holds.ids() {
		if !wantHolds[id] {
			t.Errorf("filtered endpoint got %s", id)
		}
	}
	if all.badCount()+holds.badCount() != 0 {
		t.Fatalf("%d requests failed signature verification", all.badCount()+holds.badCount())
	}
	all.mu.Lock()
	for id, b := range all.bodies {
		data, _ := b["data"].(map[string]any)
		if "evt_"+fmt.Sprint(data["id"]) != id || b["type"] == nil || b["timestamp"] == nil || data["sequence"] == nil {
			t.Errorf("body of %s: %v", id, b)
		}
		if wantHolds[id] != (b["type"] == "transaction.pending") {
			t.Errorf("%s has type %v", id, b["type"])
		}
	}
	all.mu.Unlock()
	waitFor(t, 10*time.Second, "the log to show every delivery delivered", func() bool {
		m := e.Do("GET", hooksPath(l)+"/"+allID+"/deliveries?status=delivered&limit=1000", admin, nil).Expect(t, 200).JSON()
		return len(m["data"].([]any)) == len(want)
	})
}

// TestEnabledPeriodsOnly: an endpoint gets none of the events before its
// creation and none of those committed while it was disabled, even after
// it is enabled again; exactly the others.
func TestEnabledPeriodsOnly(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "periods")
	r := newReceiver(t)
	startWorker(t, e, job.Config{})
	for range 3 {
		transfer(t, e, l)
	}
	id, secret := endpoint(t, e, l, r.URL())
	r.setSecrets(secret)
	want := map[string]bool{}
	for range 3 {
		want[transfer(t, e, l)] = true
	}
	// Accounts are events too: b's creation is sent, world's and a's
	// (before the endpoint) are not.
	e.Account(l, "b", "USD", nil)
	e.Do("PATCH", hooksPath(l)+"/"+id, admin, map[string]any{"status": "disabled"}).Expect(t, 200)
	for range 3 {
		transfer(t, e, l)
	}
	m := e.Do("PATCH", hooksPath(l)+"/"+id, admin, map[string]any{"status": "enabled"}).Expect(t, 200).JSON()
	if m["status"] != "enabled" {
		t.Fatalf("PATCH answered %v", m)
	}
	var last string
	for range 3 {
		last = transfer(t, e, l)
		want[last] = true
	}
	waitFor(t, 20*time.Second, "the last event", func() bool { return r.ids()[last] > 0 })
	// The relay works in order, so nothing earlier can still be on its way;
	// give stray deliveries a moment anyway.
	time.Sleep(500 * time.Millisecond)
	got := r.ids()
	accounts := 0
	r.mu.Lock()
	for id, b := range r.bodies {
		if b["type"] == "account.created" {
			accounts++
			if data, _ := b["data"].(map[string]any); data["id"] != "b" {
				t.Errorf("account.created of %v, created while the endpoint did not exist", data["id"])
			}
			delete(got, id)
		}
	}
	r.mu.Unlock()
	if accounts != 1 {
		t.Errorf("%d account.created events, want 1 (account b)", accounts)
	}
	for id := range got {
		if !want[id] {
			t.Errorf("got %s, committed while the endpoint did not exist or was disabled", id)
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("missing %s", id)
		}
	}
}

// TestRotationSignsWithBoth: after a rotation each request carries two
// signatures, the new secret's first, and verifies with either secret
// alone.
func TestRotationSignsWithBoth(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "rotate")
	r := newReceiver(t)
	id, old := endpoint(t, e, l, r.URL())
	m := e.Do("POST", hooksPath(l)+"/"+id+"/rotate-secret", admin, nil).Expect(t, 200).JSON()
	fresh := m["secret"].(string)
	if !strings.HasPrefix(fresh, "whsec_") || fresh == old {
		t.Fatalf("rotate answered %v", m)
	}
	r.setSecrets(old) // a receiver not yet updated keeps verifying
	startWorker(t, e, job.Config{})
	ev := transfer(t, e, l)
	waitFor(t, 20*time.Second, "the event", func() bool { return r.ids()[ev] > 0 })
	r.mu.Lock()
	sig := r.sigs[ev]
	r.mu.Unlock()
	parts := strings.Fields(sig)
	if len(parts) != 2 {
		t.Fatalf("signature header %q: want two signatures", sig)
	}
	r.setSecrets(fresh)
	ev2 := transfer(t, e, l)
	waitFor(t, 20*time.Second, "the second event with the new secret", func() bool { return r.ids()[ev2] > 0 })
	if r.badCount() != 0 {
		t.Fatalf("%d requests failed verification", r.badCount())
	}
	// The new secret's signature comes first.
	keys, _ := webhook.ParseKeys(fresh)
	r.mu.Lock()
	sig2 := r.sigs[ev2]
	r.mu.Unlock()
	if got := strings.Fields(sig2)[0]; !strings.HasPrefix(got, "v1,") || len(keys) != 1 {
		t.Fatalf("first signature %q", got)
	}
}
