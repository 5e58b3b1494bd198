package job_test

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// deliveryOf returns the delivery of event ev to endpoint ep from the
// delivery log (nil until the relay has recorded it).
func deliveryOf(t *testing.T, e *ledgertest.Env, l, ep, ev string) map[string]any {
	t.Helper()
	m := e.Do("GET", hooksPath(l)+"/"+ep+"/deliveries?limit=1000", admin, nil).Expect(t, 200).JSON()
	for _, d := range m["data"].([]any) {
		if d := d.(map[string]any); d["event_id"] == ev {
			return d
		}
	}
	return nil
}

// TestFirstAttemptOutlivesRelayStep: an endpoint slower than the relay
// step's wait for its first attempts gets each event once. The attempt
// left running is recorded leased to the worker, not claimed a second
// time, and its outcome is written when it comes: delivered, one attempt.
// Then the endpoint, with its delivery pending while it answered, has
// caught up, and a fast answer is recorded delivered by the relay itself.
func TestFirstAttemptOutlivesRelayStep(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "slowfirst")
	r := newReceiver(t)
	ep, s := endpoint(t, e, l, r.URL())
	r.setSecrets(s)
	r.setHang(time.Second) // four times the step's wait
	startWorker(t, e, job.Config{Timeout: 5 * time.Second})

	slow := transfer(t, e, l)
	waitFor(t, 20*time.Second, "the slow delivery to be recorded delivered", func() bool {
		d := deliveryOf(t, e, l, ep, slow)
		return d != nil && d["status"] == "delivered"
	})
	d := deliveryOf(t, e, l, ep, slow)
	if a := d["attempts"].(interface{ String() string }).String(); a != "1" {
		t.Errorf("slow delivery: %s attempts, want 1: %v", a, d)
	}
	// A second worker's claim or a lease running out would show as a
	// second request; wait past a claim poll or two to see none comes.
	time.Sleep(300 * time.Millisecond)
	if n := r.ids()[slow]; n != 1 {
		t.Errorf("the slow event reached the receiver %d times, want 1", n)
	}

	r.setHang(0)
	fast := transfer(t, e, l)
	waitFor(t, 20*time.Second, "the fast delivery to be recorded delivered", func() bool {
		d := deliveryOf(t, e, l, ep, fast)
		return d != nil && d["status"] == "delivered"
	})
	if n := r.ids()[fast]; n != 1 {
		t.Errorf("the fast event reached the receiver %d times, want 1", n)
	}
}
