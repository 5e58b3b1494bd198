package job

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// MonitorStore evaluates balance monitors from the log; *postgres.DB is
// one. A Store that is not one runs no monitors.
type MonitorStore interface {
	EmailStore
	MonitorStep(ctx context.Context, limit int, render postgres.MonitorRender) (postgres.MonitorStepResult, error)
}

// monitorTail evaluates monitors and sends their e-mails.
type monitorTail struct {
	store  MonitorStore
	mailer *mailer // nil: e-mails stay pending
	email  EmailConfig
	poll   time.Duration
	batch  int
	m      *monitorMetrics
	log    *slog.Logger
	pace   *pacer
}

func newMonitorTail(store Store, cfg *Config) (*monitorTail, error) {
	ms, ok := store.(MonitorStore)
	if !ok {
		return nil, nil
	}
	e := cfg.Email
	if e.Schedule == nil {
		e.Schedule = webhook.DefaultSchedule
	}
	if e.Timeout <= 0 {
		e.Timeout = 30 * time.Second
	}
	if e.Concurrency <= 0 {
		e.Concurrency = 4
	}
	// A bad SMTP setting sends nothing but still triggers and queues: the
	// e-mails wait for a worker set up right (the commands refuse to start
	// with one, so this is for embedders).
	ml, err := newMailer(e)
	return &monitorTail{store: ms, mailer: ml, email: e, poll: cfg.Poll, batch: cfg.RelayBatch,
		m: newMonitorMetrics(cfg.Registerer), log: cfg.Logger}, err
}

// run evaluates and sends until ctx ends.
func (t *monitorTail) run(ctx context.Context) {
	done := make(chan struct{})
	go func() { t.emailLoop(ctx); close(done) }()
	for ctx.Err() == nil {
		start := time.Now()
		r, err := t.store.MonitorStep(ctx, t.batch, renderEmail)
		worked := time.Since(start)
		if err != nil && ctx.Err() == nil {
			t.log.Error("evaluate monitors", "err", err)
		}
		if err == nil {
			t.m.triggers.Add(float64(r.Triggers))
			t.m.queued.Add(float64(r.Emails))
		}
		if r.Read > 0 && err == nil {
			t.pace.rest(ctx, worked)
			continue
		}
		sleep(ctx, t.poll)
	}
	<-done
}

type monitorMetrics struct {
	triggers     prometheus.Counter
	queued       prometheus.Counter
	emailSent    prometheus.Counter
	emailRetries prometheus.Counter
	emailFailed  prometheus.Counter
}

func newMonitorMetrics(reg prometheus.Registerer) *monitorMetrics {
	m := &monitorMetrics{
		triggers: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_monitor_triggers_total",
			Help: "Balance monitor crossings this worker recorded (each one monitor.triggered event)."}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_email_queued_total",
			Help: "E-mails this worker queued for monitors that triggered."}),
		emailSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_email_sent_total",
			Help: "E-mails this worker handed to the SMTP server (250 to the message)."}),
		emailRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_email_retries_total",
			Help: "E-mail attempts this worker made that failed and will be retried."}),
		emailFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerd_email_failed_total",
			Help: "E-mails this worker dead-lettered after their last attempt failed."}),
	}
	if reg != nil {
		reg.MustRegister(m.triggers, m.queued, m.emailSent, m.emailRetries, m.emailFailed)
	}
	return m
}

// The e-mail of a trigger. Plain text; values are the committed ones.
var (
	subjectTmpl = template.Must(template.New("subject").Parse(
		`[ledgerd] {{.Ledger}}: {{.Account}} {{.Field}} {{.Operator}} {{.Value}}`))
	bodyTmpl = template.Must(template.New("body").Parse(`A balance monitor of ledger {{.Ledger}} triggered.

Account:     {{.Account}}
Condition:   {{.Field}} {{.Operator}} {{.Value}}
Balance:     posted {{.Posted}}, available {{.Available}}, pending debits {{.PendingDebits}}, pending credits {{.PendingCredits}}
Transaction: {{.TransactionID}} (sequence {{.Sequence}}, committed {{.CommittedAt}})
Monitor:     {{.MonitorID}}{{if .Description}}
Description: {{.Description}}{{end}}

The monitor triggers again only after the condition has been false in between.
`))
)

type emailView struct {
	Ledger, Account, Field, Operator, MonitorID, Description, TransactionID, CommittedAt, Available string
	Value, Posted, PendingDebits, PendingCredits, Sequence                                          int64
}

// renderEmail renders a trigger's e-mail.
func renderEmail(t *ledgerd.MonitorTrigger) (subject, body string, err error) {
	v := emailView{Ledger: t.Ledger, Account: t.Monitor.Account, Field: t.Monitor.Condition.Field,
		Operator: t.Monitor.Condition.Operator, Value: t.Monitor.Condition.Value, MonitorID: t.Monitor.ID,
		Description: t.Monitor.Description, TransactionID: t.TransactionID, Sequence: t.Sequence,
		CommittedAt: t.CommittedAt.UTC().Format(time.RFC3339Nano), Posted: t.Balance.Posted,
		PendingDebits: t.Balance.PendingDebits, PendingCredits: t.Balance.PendingCredits, Available: "n/a"}
	if a, ok := t.Balance.Available(); ok {
		v.Available = strconv.FormatInt(a, 10)
	}
	var s, b bytes.Buffer
	if err := subjectTmpl.Execute(&s, v); err != nil {
		return "", "", err
	}
	if err := bodyTmpl.Execute(&b, v); err != nil {
		return "", "", err
	}
	// A subject is one header line, whatever an account id holds.
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s.String()), b.String(), nil
}
