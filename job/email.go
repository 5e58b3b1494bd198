package job

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/webhook"
	"github.com/wneessen/go-mail"
)

// EmailConfig is the SMTP side of the tail.
type EmailConfig struct {
	// URL is the SMTP server (LEDGERD_SMTP_URL): smtp://user:pass@host:port
	// (STARTTLS when the server offers it; port 25 by default) or
	// smtps://… (TLS from the start; port 465). Empty: monitors still
	// trigger and queue their e-mails, which stay pending until a worker
	// with a URL runs.
	URL string
	// From is the sender address (LEDGERD_SMTP_FROM).
	From string
	// Schedule is the retry schedule (default webhook.DefaultSchedule);
	// after its last wait the e-mail is dead-lettered (failed).
	Schedule webhook.Schedule
	// Timeout bounds one attempt, connection to QUIT. Default 30 s.
	Timeout time.Duration
	// Concurrency bounds the attempts this worker makes at once. Default 4.
	Concurrency int
	// TLS replaces the TLS settings of STARTTLS and smtps (nil: the
	// system's roots, the URL's host as the server name).
	TLS *tls.Config
}

// ParseSMTPURL checks an SMTP URL and returns the client options it
// stands for.
func ParseSMTPURL(raw string) (host string, opts []mail.Option, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, errors.New("not a URL")
	}
	port := 0
	switch u.Scheme {
	case "smtp":
		port = 25
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "smtps":
		port = 465
		opts = append(opts, mail.WithSSL())
	default:
		return "", nil, errors.New(`scheme must be "smtp" or "smtps"`)
	}
	host = u.Hostname()
	if host == "" {
		return "", nil, errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", nil, errors.New("port must be between 1 and 65535")
		}
	}
	opts = append(opts, mail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(u.User.Username()),
			mail.WithPassword(pass))
	}
	return host, opts, nil
}

// mailer sends the outbox's e-mails.
type mailer struct {
	host string
	opts []mail.Option
	from string
}

func newMailer(c EmailConfig) (*mailer, error) {
	if c.URL == "" {
		return nil, nil
	}
	host, opts, err := ParseSMTPURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("LEDGERD_SMTP_URL: %w", err)
	}
	if c.From == "" {
		return nil, errors.New("LEDGERD_SMTP_FROM is required with LEDGERD_SMTP_URL")
	}
	opts = append(opts, mail.WithTimeout(c.Timeout))
	if c.TLS != nil {
		opts = append(opts, mail.WithTLSConfig(c.TLS))
	}
	return &mailer{host: host, opts: opts, from: c.From}, nil
}

// send makes one attempt: one connection, one message. The Message-ID is
// the outbox row's, the same on every attempt, so that a mailbox can tell
// a repeat (a worker that dies between the server's 250 and recording it
// sends again) from a new trigger.
func (m *mailer) send(ctx context.Context, e *postgres.Email) error {
	msg := mail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(e.Recipients...); err != nil {
		return fmt.Errorf("recipients: %w", err)
	}
	msg.Subject(e.Subject)
	msg.SetMessageIDWithValue("ledgerd-email-" + strconv.FormatInt(e.ID, 10) + "@" + m.domain())
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, e.Body)
	c, err := mail.NewClient(m.host, m.opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

func (m *mailer) domain() string {
	if i := strings.LastIndexByte(m.from, '@'); i >= 0 && i < len(m.from)-1 {
		return strings.TrimSuffix(m.from[i+1:], ">")
	}
	return "ledgerd"
}

// EmailStore is the outbox; *postgres.DB is one.
type EmailStore interface {
	ClaimEmails(ctx context.Context, n int, lease time.Duration) ([]postgres.Email, error)
	CompleteEmail(ctx context.Context, r postgres.EmailResult) error
}

// emailLoop sends due e-mails, a bounded number at a time, in a loop of
// its own: an SMTP server that is down or hangs delays only e-mail, by at
// most the attempt timeout per round.
func (t *monitorTail) emailLoop(ctx context.Context) {
	if t.mailer == nil {
		return
	}
	lease := 2*t.email.Timeout + 10*time.Second
	for ctx.Err() == nil {
		es, err := t.store.ClaimEmails(ctx, t.email.Concurrency, lease)
		if err != nil && ctx.Err() == nil {
			t.log.Error("claim e-mails", "err", err)
		}
		var wg sync.WaitGroup
		for i := range es {
			wg.Go(func() { t.attemptEmail(&es[i]) })
		}
		wg.Wait()
		if len(es) < t.email.Concurrency {
			sleep(ctx, t.poll)
		}
	}
}

// attemptEmail sends one e-mail and writes the outcome. It runs to the end
// even when the worker is stopping (bounded by the timeout), so that a
// clean stop never leaves a sent e-mail unrecorded.
func (t *monitorTail) attemptEmail(e *postgres.Email) {
	ctx, cancel := context.WithTimeout(context.Background(), t.email.Timeout)
	err := t.mailer.send(ctx, e)
	cancel()
	r := postgres.EmailResult{ID: e.ID}
	now := time.Now()
	switch {
	case err == nil:
		r.Sent = true
		t.m.emailSent.Inc()
	default:
		r.Err = truncate(err.Error(), 1000)
		if next, ok := t.email.Schedule.Next(e.Attempts, now, nil); ok {
			r.NextAttemptAt = next
			t.m.emailRetries.Inc()
		} else {
			r.Failed = true
			t.m.emailFailed.Inc()
		}
		t.log.Warn("e-mail attempt failed", "email", e.ID, "attempts", e.Attempts, "dead_letter", r.Failed, "err", err)
	}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := t.store.CompleteEmail(ctx, r)
		cancel()
		if err == nil {
			return
		}
		// Not lost: the lease runs out and the e-mail is attempted again.
		t.log.Error("write e-mail outcome", "email", e.ID, "try", i+1, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
