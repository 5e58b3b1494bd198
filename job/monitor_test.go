package job_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// runWorker runs a worker until the returned stop is called (or the test
// ends); stop waits for a clean shutdown.
func runWorker(t *testing.T, env *ledgertest.Env, cfg job.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := postgres.Open(ctx, postgres.Config{URL: env.DatabaseURL, MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowPrivate = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	w := job.New(db, db, cfg)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30 s")
		}
		db.Close()
	}
	t.Cleanup(stop)
	return stop
}

func monitorsPath(l string) string { return "/v1/ledgers/" + l + "/monitors" }

func createMonitor(t *testing.T, e *ledgertest.Env, l, account, field, op string, value int64, email ...string) string {
	t.Helper()
	body := map[string]any{"account": account, "condition": map[string]any{"field": field, "operator": op, "value": value},
		"description": "test monitor"}
	if len(email) > 0 {
		body["email"] = email
	}
	return e.Do("POST", monitorsPath(l), admin, body).Expect(t, 201).JSON()["id"].(string)
}

// move transfers amount from → to and returns the transaction id.
func move(t *testing.T, e *ledgertest.Env, l, from, to string, amount int64) string {
	t.Helper()
	return e.Transfer(l, from, to, amount, "USD").Expect(t, 201).JSON()["id"].(string)
}

// triggered lists the ledger's monitor.triggered events' data.
func triggered(t *testing.T, e *ledgertest.Env, l string) []map[string]any {
	t.Helper()
	m := e.Do("GET", "/v1/ledgers/"+l+"/events?type=monitor.triggered&limit=1000", admin, nil).Expect(t, 200).JSON()
	var out []map[string]any
	for _, ev := range m["data"].([]any) {
		out = append(out, ev.(map[string]any)["data"].(map[string]any))
	}
	return out
}

// mailAbout returns the one e-mail about transaction tx.
func mailAbout(t *testing.T, msgs []message, tx string) message {
	t.Helper()
	var found []message
	for _, m := range msgs {
		if strings.Contains(m.Body, "Transaction: "+tx+" ") {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d e-mails about transaction %s, want 1", len(found), tx)
	}
	return found[0]
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMonitorEmailOncePerCrossing: a real SMTP server on loopback (with
// AUTH, from the URL's credentials) gets one e-mail per false→true
// crossing — to every recipient, with the account, condition, balance and
// the crossing transaction — and none while the condition stays true; a
// hold crosses an available-balance monitor; events and metrics agree.
func TestMonitorEmailOncePerCrossing(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "mon-mail")
	smtpd := newSMTPServer(t, "mailer", "s3cret")
	reg := prometheus.NewRegistry()
	runWorker(t, e, job.Config{Registerer: reg, Email: job.EmailConfig{URL: smtpd.URL(), From: "ledgerd@example.net", TLS: smtpd.tlsClient}})
	mon := createMonitor(t, e, l, "a", "posted", "<", 0, "ops@example.com", "cfo@example.org")
	avail := createMonitor(t, e, l, "a", "available", "<", -100) // events only

	cross1 := move(t, e, l, "a", "world", 10) // -10: crosses
	move(t, e, l, "a", "world", 5)            // -15: still true
	move(t, e, l, "world", "a", 20)           // 5: false again
	cross2 := move(t, e, l, "a", "world", 10) // -5: crosses again
	holdBody := map[string]any{"postings": []map[string]any{{"source": "a", "destination": "world", "amount": 200, "asset": "USD"}},
		"pending": true}
	holdID := e.Do("POST", "/v1/ledgers/"+l+"/transactions", admin, holdBody).Expect(t, 201).JSON()["id"].(string)

	waitFor(t, 20*time.Second, "two e-mails and three triggers", func() bool {
		return len(smtpd.messages()) >= 2 && len(triggered(t, e, l)) >= 3
	})
	time.Sleep(500 * time.Millisecond) // several polls: nothing more may come
	msgs := smtpd.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d e-mails, want 2: %+v", len(msgs), msgs)
	}
	for i, want := range []struct {
		tx     string
		posted int64
	}{{cross1, -10}, {cross2, -5}} {
		// E-mails are sent concurrently: their order is not the log's.
		m := mailAbout(t, msgs, want.tx)
		slices.Sort(m.To)
		if m.From != "ledgerd@example.net" || !slices.Equal(m.To, []string{"cfo@example.org", "ops@example.com"}) {
			t.Errorf("mail %d envelope from %q to %v", i, m.From, m.To)
		}
		if m.Subject != "[ledgerd] "+l+": a posted < 0" {
			t.Errorf("mail %d subject %q", i, m.Subject)
		}
		for _, s := range []string{"Account:     a", "Condition:   posted < 0", fmt.Sprintf("posted %d,", want.posted),
			"Transaction: " + want.tx, "Monitor:     " + mon, "Description: test monitor"} {
			if !strings.Contains(m.Body, s) {
				t.Errorf("mail %d body lacks %q:\n%s", i, s, m.Body)
			}
		}
	}
	if msgs[0].ID == msgs[1].ID || msgs[0].ID == "" {
		t.Errorf("Message-IDs %q, %q: want distinct", msgs[0].ID, msgs[1].ID)
	}
	evs := triggered(t, e, l)
	if len(evs) != 3 {
		t.Fatalf("%d monitor.triggered events, want 3: %v", len(evs), evs)
	}
	for i, want := range []struct {
		mon, tx string
	}{{mon, cross1}, {mon, cross2}, {avail, holdID}} {
		d := evs[i]
		if d["monitor"].(map[string]any)["id"] != want.mon || d["transaction_id"] != want.tx || d["account"] != "a" {
			t.Errorf("event %d data %v, want monitor %s transaction %s", i, d, want.mon, want.tx)
		}
	}
	if b := evs[2]["balance"].(map[string]any); fmt.Sprint(b["available"]) != "-205" || fmt.Sprint(b["posted"]) != "-5" {
		t.Errorf("hold's trigger balance %v, want available -205, posted -5", b)
	}
	got := e.Do("GET", monitorsPath(l)+"/"+mon, admin, nil).Expect(t, 200).JSON()
	if fmt.Sprint(got["triggers"]) != "2" || got["last_triggered_at"] == nil {
		t.Errorf("monitor after two crossings: %v", got)
	}
	if n := counter(t, reg, "ledgerd_monitor_triggers_total"); n != 3 {
		t.Errorf("ledgerd_monitor_triggers_total = %v, want 3", n)
	}
	if n := counter(t, reg, "ledgerd_email_sent_total"); n != 2 {
		t.Errorf("ledgerd_email_sent_total = %v, want 2", n)
	}
}

// TestMonitorWorkerRestart: crossings committed while the worker is
// stopped (and evaluated later in one step) are each mailed once after a
// restart; nothing mailed before the stop is mailed again.
func TestMonitorWorkerRestart(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "mon-restart")
	smtpd := newSMTPServer(t, "", "")
	cfg := job.Config{Email: job.EmailConfig{URL: smtpd.URL(), From: "ledgerd@example.net", TLS: smtpd.tlsClient}}
	stop := runWorker(t, e, cfg)
	createMonitor(t, e, l, "a", "posted", "<", 0, "ops@example.com")
	want := []string{move(t, e, l, "a", "world", 1)}
	waitFor(t, 20*time.Second, "the first e-mail", func() bool { return len(smtpd.messages()) == 1 })
	stop()
	for range 3 {
		move(t, e, l, "world", "a", 2)                      // +1: false
		want = append(want, move(t, e, l, "a", "world", 2)) // -1: crosses
		move(t, e, l, "a", "world", 1)                      // -2: still true
		move(t, e, l, "world", "a", 1)                      // -1: still true
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(smtpd.messages()); n != 1 {
		t.Fatalf("%d e-mails while the worker was stopped", n)
	}
	runWorker(t, e, cfg)
	waitFor(t, 20*time.Second, "every e-mail", func() bool { return len(smtpd.messages()) >= len(want) })
	time.Sleep(500 * time.Millisecond)
	msgs := smtpd.messages()
	if len(msgs) != len(want) {
		t.Fatalf("%d e-mails, want %d", len(msgs), len(want))
	}
	for _, tx := range want {
		mailAbout(t, msgs, tx)
	}
}

// TestMonitorSMTPDown: an SMTP server that accepts connections and never
// answers holds up no webhook delivery; its e-mail is retried on the
// schedule and dead-lettered, and counted as failed.
func TestMonitorSMTPDown(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, e, "mon-down")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	recv := newReceiver(t)
	_, secret := endpoint(t, e, l, recv.URL(), "transaction.posted")
	recv.setSecrets(secret)
	reg := prometheus.NewRegistry()
	runWorker(t, e, job.Config{Registerer: reg, Email: job.EmailConfig{URL: "smtp://" + ln.Addr().String(),
		From: "ledgerd@example.net", Timeout: time.Second, Schedule: webhook.Schedule{50 * time.Millisecond, 50 * time.Millisecond}}})
	createMonitor(t, e, l, "a", "posted", "<", 0, "ops@example.com")
	tx := move(t, e, l, "a", "world", 1)
	committed := time.Now()
	waitFor(t, 5*time.Second, "the webhook delivery", func() bool { return recv.ids()["evt_"+tx] > 0 })
	if d := time.Since(committed); d > 2*time.Second {
		t.Errorf("webhook delivered %v after the commit while SMTP hung", d)
	}
	waitFor(t, 2*time.Second, "the monitor.triggered event while SMTP hangs", func() bool { return len(triggered(t, e, l)) == 1 })
	var status string
	var attempts int
	waitFor(t, 20*time.Second, "the e-mail dead-lettered", func() bool {
		err := e.DB.Pool.QueryRow(context.Background(), `SELECT status, attempts FROM emails`).Scan(&status, &attempts)
		return err == nil && status == "failed"
	})
	if attempts != 3 {
		t.Errorf("dead-lettered after %d attempts, want 3 (schedule of two waits)", attempts)
	}
	if n := counter(t, reg, "ledgerd_email_failed_total"); n != 1 {
		t.Errorf("ledgerd_email_failed_total = %v, want 1", n)
	}
}

// TestMonitorWithoutSMTP: without LEDGERD_SMTP_URL monitors still trigger
// their events; their e-mails wait, pending and unattempted.
func TestMonitorWithoutSMTP(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := newLedger(t, e, "mon-nosmtp")
	runWorker(t, e, job.Config{})
	createMonitor(t, e, l, "a", "posted", "<", 0, "ops@example.com")
	move(t, e, l, "a", "world", 1)
	waitFor(t, 20*time.Second, "the trigger", func() bool { return len(triggered(t, e, l)) == 1 })
	var status string
	var attempts int
	if err := e.DB.Pool.QueryRow(context.Background(), `SELECT status, attempts FROM emails`).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || attempts != 0 {
		t.Fatalf("e-mail %s after %d attempts, want pending after 0", status, attempts)
	}
}
