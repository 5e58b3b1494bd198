package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// WebhookConsumer is the relay cursor's consumer name for webhooks.
const WebhookConsumer = "webhooks"

// RotationGrace is how long a rotated-out secret still signs deliveries.
const RotationGrace = 24 * time.Hour

const endpointCols = `id, ledger_id, url, event_types, description, status, secret,
	coalesce(previous_secret, ''), coalesce(previous_until, 'epoch'), created_at, updated_at`

func (db *DB) scanEndpoint(row pgx.Row) (*ledgerd.WebhookEndpoint, error) {
	e := &ledgerd.WebhookEndpoint{}
	var types []string
	var until time.Time
	err := row.Scan(&e.ID, &e.LedgerID, &e.URL, &types, &e.Description, &e.Status, &e.Secret,
		&e.PreviousSecret, &until, &e.CreatedAt, &e.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if types != nil {
		e.EventTypes = make([]ledgerd.EventType, len(types))
		for i, t := range types {
			e.EventTypes[i] = ledgerd.EventType(t)
		}
	}
	e.PreviousUntil = until.UTC()
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	openSecrets(db.SecretKeys, e)
	return e, nil
}

func typeStrings(ts []ledgerd.EventType) []string {
	if ts == nil {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func newEndpointID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "we_" + hex.EncodeToString(b[:])
}

// lockPosition takes the ledger's ordering lock and returns the position
// of its newest event: what enabling or disabling an endpoint is measured
// against. Any event committed later has a greater position, because it
// needs this lock (or the last_sequence it protects) to be written.
func lockPosition(ctx context.Context, tx pgx.Tx, ledgerID int64) (ledgerd.EventPosition, error) {
	var p ledgerd.EventPosition
	// Events that are not transactions sit at (last_sequence, ordinal),
	// their ordinal drawn after this lock is taken: the newest at
	// last_sequence, if any, is the last one committed before it.
	err := tx.QueryRow(ctx, `WITH l AS (SELECT last_sequence FROM ledgers WHERE id = $1 FOR UPDATE)
		SELECT l.last_sequence, coalesce((SELECT max(e.ordinal) FROM events e
			WHERE e.ledger_id = $1 AND e.after_sequence = l.last_sequence), 0) FROM l`, ledgerID).Scan(&p.Sequence, &p.Ordinal)
	return p, err
}

// CreateWebhookEndpoint stores a new endpoint, enabled from the ledger's
// current position on, and fills in its id and times.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, e *ledgerd.WebhookEndpoint) error {
	e.ID = newEndpointID()
	e.Status = ledgerd.WebhookEnabled
	stored, err := db.SecretKeys.Seal(e.Secret, e.ID)
	if err != nil {
		return err
	}
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The endpoint row first, so that the ordering lock is held for as
		// short a time as possible (the write path waits on it).
		if err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, ledger_id, url, event_types, description, status, secret)
			VALUES ($1, $2, $3, $4, $5, 'enabled', $6) RETURNING created_at, updated_at`,
			e.ID, e.LedgerID, e.URL, typeStrings(e.EventTypes), e.Description, stored).Scan(&e.CreatedAt, &e.UpdatedAt); err != nil {
			return err
		}
		e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
		p, err := lockPosition(ctx, tx, e.LedgerID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoint_periods (endpoint_id, start_seq, start_ord) VALUES ($1, $2, $3)`,
			e.ID, p.Sequence, p.Ordinal); err != nil {
			return err
		}
		// The relay starts this ledger where the first endpoint starts:
		// nothing before it can match any endpoint.
		if _, err = tx.Exec(ctx, `INSERT INTO event_cursors (consumer, ledger_id, seq, ord) VALUES ($1, $2, $3, $4)
			ON CONFLICT (consumer, ledger_id) DO NOTHING`, WebhookConsumer, e.LedgerID, p.Sequence, p.Ordinal); err != nil {
			return err
		}
		return writeAudit(ctx, tx, e.LedgerID, e.ID)
	})
}

// WebhookEndpoint returns a ledger's endpoint, or nil.
func (db *DB) WebhookEndpoint(ctx context.Context, ledgerID int64, id string) (*ledgerd.WebhookEndpoint, error) {
	e, err := db.scanEndpoint(db.queryRow(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE ledger_id = $1 AND id = $2`, ledgerID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

// ListWebhookEndpoints lists a ledger's endpoints by id, after the given
// id, at most limit.
func (db *DB) ListWebhookEndpoints(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.WebhookEndpoint, error) {
	rows, err := db.query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE ledger_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		ledgerID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledgerd.WebhookEndpoint
	for rows.Next() {
		e, err := db.scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// UpdateWebhookEndpoint applies a patch and returns the endpoint, or nil
// when the ledger has no such endpoint. A change of status opens or closes
// an enabled period at the ledger's current position, under its ordering
// lock, so that exactly the events committed while enabled are sent.
func (db *DB) UpdateWebhookEndpoint(ctx context.Context, ledgerID int64, id string, p *ledgerd.WebhookEndpointPatch) (*ledgerd.WebhookEndpoint, error) {
	var out *ledgerd.WebhookEndpoint
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		// A change of status needs the ledger's position, taken first: the
		// endpoint row, which the relay reads FOR SHARE, is then locked
		// only for the few statements after it, never while this waits
		// behind the write path for the ordering lock.
		// The audit entry needs the lock too, for its position.
		var pos ledgerd.EventPosition
		if p.Status != nil || ledgerd.AuditFrom(ctx) != nil {
			var err error
			if pos, err = lockPosition(ctx, tx, ledgerID); err != nil {
				return err
			}
		}
		e, err := db.scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE ledger_id = $1 AND id = $2 FOR NO KEY UPDATE`, ledgerID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.URL != nil {
			e.URL = *p.URL
		}
		if p.EventTypes != nil {
			e.EventTypes = *p.EventTypes
		}
		if p.Description != nil {
			e.Description = *p.Description
		}
		if p.Status != nil && *p.Status != e.Status {
			if err := switchStatus(ctx, tx, e, *p.Status, pos); err != nil {
				return err
			}
		}
		// Enabling forgets a 410: the receiver is back.
		if err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET url = $2, event_types = $3, description = $4, status = $5,
			gone_at = CASE WHEN $5 = 'enabled' THEN NULL ELSE gone_at END,
			updated_at = clock_timestamp() WHERE id = $1 RETURNING updated_at`,
			e.ID, e.URL, typeStrings(e.EventTypes), e.Description, e.Status).Scan(&e.UpdatedAt); err != nil {
			return err
		}
		e.UpdatedAt = e.UpdatedAt.UTC()
		out = e
		return writeAudit(ctx, tx, ledgerID, id)
	})
	return out, err
}

// switchStatus opens (enable) or closes (disable) e's enabled period at
// pos, the ledger's position under its ordering lock, which tx holds, as
// it holds the endpoint row. Pending deliveries of a disabled endpoint
// are held, not attempted (claims take enabled endpoints only), and go out
// when it is enabled again: they are events committed while it was
// enabled.
func switchStatus(ctx context.Context, tx pgx.Tx, e *ledgerd.WebhookEndpoint, status string, pos ledgerd.EventPosition) error {
	var err error
	if status == ledgerd.WebhookEnabled {
		_, err = tx.Exec(ctx, `INSERT INTO webhook_endpoint_periods (endpoint_id, start_seq, start_ord) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, e.ID, pos.Sequence, pos.Ordinal)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO event_cursors (consumer, ledger_id, seq, ord) VALUES ($1, $2, $3, $4)
				ON CONFLICT (consumer, ledger_id) DO NOTHING`, WebhookConsumer, e.LedgerID, pos.Sequence, pos.Ordinal)
		}
	} else {
		_, err = tx.Exec(ctx, `UPDATE webhook_endpoint_periods SET end_seq = $2, end_ord = $3 WHERE endpoint_id = $1 AND end_seq IS NULL`,
			e.ID, pos.Sequence, pos.Ordinal)
	}
	e.Status = status
	return err
}

// DeleteWebhookEndpoint deletes an endpoint and its delivery log; false
// when the ledger has no such endpoint.
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, ledgerID int64, id string) (bool, error) {
	return db.auditedChange(ctx, ledgerID, id, `DELETE FROM webhook_endpoints WHERE ledger_id = $1 AND id = $2`, ledgerID, id)
}

// auditedChange runs one statement that changes an endpoint and, when it
// changed a row, the request's audit entry, under the ledger's lock.
func (db *DB) auditedChange(ctx context.Context, ledgerID int64, id, sql string, args ...any) (changed bool, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		if ledgerd.AuditFrom(ctx) != nil {
			if _, err := tx.Exec(ctx, lockLedgerForEventsSQL, ledgerID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil || tag.RowsAffected() != 1 {
			return err
		}
		changed = true
		return writeAudit(ctx, tx, ledgerID, id)
	})
	return changed, err
}

// RotateWebhookSecret makes secret the endpoint's signing secret; the
// current one keeps signing alongside it for RotationGrace. False when the
// ledger has no such endpoint.
func (db *DB) RotateWebhookSecret(ctx context.Context, ledgerID int64, id, secret string) (bool, error) {
	// The rotated-out secret moves to previous_secret as stored: sealed
	// for this same endpoint, it opens there as it did.
	secret, err := db.SecretKeys.Seal(secret, id)
	if err != nil {
		return false, err
	}
	return db.auditedChange(ctx, ledgerID, id, `UPDATE webhook_endpoints SET previous_secret = secret, previous_until = clock_timestamp() + $4 * interval '1 second',
		secret = $3, updated_at = clock_timestamp() WHERE ledger_id = $1 AND id = $2`, ledgerID, id, secret, int64(RotationGrace/time.Second))
}

// DisableGoneEndpoint disables an endpoint that answered 410 and
// dead-letters its pending deliveries, in one transaction; deliveries the
// relay adds for it later are dead letters too, until it is enabled
// again. (A disable by PATCH holds them instead: see switchStatus.)
// The attempt that met the 410 (delivery, fenced by its attempts count)
// is recorded first, so that the log shows the 410 rather than the
// disable.
func (db *DB) DisableGoneEndpoint(ctx context.Context, id string, delivery int64, attempts int) error {
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The API shows the endpoint disabled from this commit on: durable
		// even on the tail's pool, whose other commits are asynchronous.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		var ledgerID int64
		err := tx.QueryRow(ctx, `SELECT ledger_id FROM webhook_endpoints WHERE id = $1`, id).Scan(&ledgerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		// The ordering lock first (see UpdateWebhookEndpoint), and before
		// any delivery row: two attempts meeting the 410 at once then
		// queue here rather than each holding its delivery while waiting
		// for the other's.
		pos, err := lockPosition(ctx, tx, ledgerID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', locked_until = NULL, last_status_code = 410,
			last_error = '410 Gone: endpoint disabled' WHERE id = $1 AND attempts = $2 AND status = 'pending'`, delivery, attempts); err != nil {
			return err
		}
		e, err := db.scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.Status == ledgerd.WebhookEnabled {
			if err := switchStatus(ctx, tx, e, ledgerd.WebhookDisabled, pos); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET status = 'disabled', gone_at = clock_timestamp(),
			updated_at = clock_timestamp() WHERE id = $1`, id); err != nil {
			return err
		}
		// An attempt in flight loses its outcome to this.
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', locked_until = NULL,
			last_error = '410 Gone: endpoint disabled' WHERE endpoint_id = $1 AND status = 'pending'`, id)
		return err
	})
}
