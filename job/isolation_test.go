package job_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/webhook"
)

// garbageServer answers every request with bytes that are not HTTP.
func garbageServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("\x00\x01 garbage, not HTTP\r\n\r\n")
		_ = buf.Flush()
		_ = c.Close()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

// TestBadEndpointsDelayNoOther: endpoints that hang, fail, answer garbage
// or 410 share the ledger with a good one; every event reaches the good
// one within about a second of its commit all along. The failing one
// dead-letters on the short schedule and a retry of the dead letter is
// attempted again; the 410 one is disabled with its deliveries failed.
func TestBadEndpointsDelayNoOther(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "isolation")
	good, hanging, failing, gone := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	_, s := endpoint(t, e, l, good.URL())
	good.setSecrets(s)
	endpoint(t, e, l, hanging.URL())
	hanging.setHang(time.Minute)
	failingID, fs := endpoint(t, e, l, failing.URL())
	failing.setSecrets(fs)
	failing.setStatus(500)
	goneID, _ := endpoint(t, e, l, gone.URL())
	gone.setStatus(410)
	endpoint(t, e, l, garbageServer(t))
	// A small worker: 8 slots, 2 per endpoint; the hanging endpoint holds
	// its 2 for the whole timeout.
	startWorker(t, e, job.Config{Concurrency: 8, PerEndpoint: 2, Timeout: 3 * time.Second,
		Schedule: webhook.Schedule{100 * time.Millisecond, 100 * time.Millisecond}})

	var evs []string
	sent := map[string]time.Time{}
	for range 40 {
		id := transfer(t, e, l)
		sent[id] = time.Now()
		evs = append(evs, id)
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "the good endpoint to get every event", func() bool { return len(good.ids()) >= len(evs) })
	good.mu.Lock()
	var worst time.Duration
	worstAt := 0
	for i, id := range evs {
		if d := good.at[id].Sub(sent[id]); d > worst {
			worst, worstAt = d, i
		}
	}
	t.Logf("slowest delivery to the good endpoint: event %d of %d, %v", worstAt+1, len(evs), worst)
	good.mu.Unlock()
	// The relay and the claim poll every 50 ms here; a second is the
	// promise, whatever the other endpoints do.
	if worst > time.Second {
		t.Errorf("slowest delivery to the good endpoint took %v", worst)
	}

	waitFor(t, 20*time.Second, "the 410 endpoint to be disabled", func() bool {
		return e.Do("GET", hooksPath(l)+"/"+goneID, admin, nil).Expect(t, 200).JSON()["status"] == "disabled"
	})
	waitFor(t, 20*time.Second, "the 410 endpoint's deliveries to be failed, the first by the 410", func() bool {
		m := e.Do("GET", hooksPath(l)+"/"+goneID+"/deliveries?status=failed&limit=1000", admin, nil).Expect(t, 200).JSON()
		codes := 0
		for _, d := range m["data"].([]any) {
			if c, _ := d.(map[string]any)["last_status_code"].(interface{ String() string }); c != nil && c.String() == "410" {
				codes++
			}
		}
		if codes == 0 {
			return false
		}
		r := e.Do("GET", hooksPath(l)+"/"+goneID+"/deliveries?status=pending", admin, nil).Expect(t, 200)
		if len(r.JSON()["data"].([]any)) > 0 {
			t.Logf("%s", r.Body)
			return false
		}
		return true
	})
	waitFor(t, 30*time.Second, "the failing endpoint's last event to be dead-lettered", func() bool {
		m := e.Do("GET", hooksPath(l)+"/"+failingID+"/deliveries?status=failed&limit=1000", admin, nil).Expect(t, 200).JSON()
		return len(m["data"].([]any)) == len(evs)
	})
	m := e.Do("GET", hooksPath(l)+"/"+failingID+"/deliveries?status=failed&limit=1", admin, nil).Expect(t, 200).JSON()
	d := m["data"].([]any)[0].(map[string]any)
	if d["attempts"].(interface{ String() string }).String() != "3" || d["last_status_code"].(interface{ String() string }).String() != "500" ||
		d["last_error"] != "HTTP 500" || d["next_attempt_at"] != nil {
		t.Fatalf("dead letter %v", d)
	}
	// A retried dead letter is attempted again, once.
	failing.setStatus(200)
	ev := d["event_id"].(string)
	e.Do("POST", hooksPath(l)+"/"+failingID+"/deliveries/"+ev+"/retry", admin, nil).Expect(t, 202)
	waitFor(t, 20*time.Second, "the retried dead letter", func() bool { return failing.ids()[ev] > 0 })
	waitFor(t, 10*time.Second, "the retried dead letter's outcome", func() bool {
		m := e.Do("GET", hooksPath(l)+"/"+failingID+"/deliveries?status=delivered", admin, nil).Expect(t, 200).JSON()
		return len(m["data"].([]any)) == 1
	})
	e.Do("POST", hooksPath(l)+"/"+failingID+"/deliveries/"+ev+"/retry", admin, nil).Expect(t, 409, "invalid_state")
	e.Do("POST", hooksPath(l)+"/"+failingID+"/deliveries/evt_nope/retry", admin, nil).Expect(t, 404, "not_found")
}
