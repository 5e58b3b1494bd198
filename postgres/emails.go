package postgres

import (
	"context"
	"time"
)

// Email is a claimed e-mail of the outbox.
type Email struct {
	ID         int64
	Recipients []string
	Subject    string
	Body       string
	// Attempts counts this one.
	Attempts int
}

// EmailResult is what became of an attempt: Sent, or else retried at
// NextAttemptAt, or dead-lettered (Failed).
type EmailResult struct {
	ID            int64
	Sent, Failed  bool
	Err           string
	NextAttemptAt time.Time
}

// ClaimEmails takes up to n due e-mails (FOR UPDATE SKIP LOCKED, so workers
// share them) and leases them: each becomes due again after lease unless
// its outcome is written first, so a worker killed mid-send leaves it to
// another.
func (db *DB) ClaimEmails(ctx context.Context, n int, lease time.Duration) ([]Email, error) {
	rows, err := db.query(ctx, `UPDATE emails m SET attempts = m.attempts + 1,
			next_attempt_at = clock_timestamp() + $2 * interval '1 millisecond'
		WHERE m.id IN (SELECT id FROM emails WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING m.id, m.recipients, m.subject, m.body, m.attempts`, n, lease.Milliseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Email
	for rows.Next() {
		var e Email
		if err := rows.Scan(&e.ID, &e.Recipients, &e.Subject, &e.Body, &e.Attempts); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CompleteEmail writes an attempt's outcome.
func (db *DB) CompleteEmail(ctx context.Context, r EmailResult) error {
	var err error
	switch {
	case r.Sent:
		_, err = db.exec(ctx, `UPDATE emails SET status = 'sent', sent_at = clock_timestamp(), last_error = NULL WHERE id = $1`, r.ID)
	case r.Failed:
		_, err = db.exec(ctx, `UPDATE emails SET status = 'failed', last_error = $2 WHERE id = $1`, r.ID, r.Err)
	default:
		_, err = db.exec(ctx, `UPDATE emails SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'pending'`,
			r.ID, r.NextAttemptAt, r.Err)
	}
	return err
}

// EmailStats counts the outbox's pending and failed (dead-lettered) e-mails.
func (db *DB) EmailStats(ctx context.Context) (pending, failed int64, err error) {
	err = db.queryRow(ctx, `SELECT (SELECT count(*) FROM emails WHERE status = 'pending'),
		(SELECT count(*) FROM emails WHERE status = 'failed')`).Scan(&pending, &failed)
	return pending, failed, err
}
