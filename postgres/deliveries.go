package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// The deliveries table is both the queue the workers claim from and the
// delivery log the API serves.

// ListWebhookDeliveries lists an endpoint's deliveries in event order,
// after the delivery of event afterEvent (exclusive; "" from the first),
// optionally of one status, at most limit.
func (db *DB) ListWebhookDeliveries(ctx context.Context, endpointID, status, afterEvent string, limit int) ([]*ledgerd.WebhookDelivery, error) {
	after := ledgerd.EventPosition{Sequence: -1}
	if afterEvent != "" {
		err := db.queryRow(ctx, `SELECT seq, ord FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2`,
			endpointID, afterEvent).Scan(&after.Sequence, &after.Ordinal)
		if errors.Is(err, pgx.ErrNoRows) {
			var v ledgerd.Validation
			v.Add("after", "is not an event in this endpoint's delivery log")
			return nil, v.Err()
		}
		if err != nil {
			return nil, err
		}
	}
	rows, err := db.query(ctx, `SELECT event_id, event_type, seq, ord, status, attempts, coalesce(last_status_code, 0),
		coalesce(last_error, ''), next_attempt_at, delivered_at, created_at
		FROM webhook_deliveries WHERE endpoint_id = $1 AND (seq, ord) > ($2, $3) AND ($4 = '' OR status = $4)
		ORDER BY seq, ord LIMIT $5`, endpointID, after.Sequence, after.Ordinal, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledgerd.WebhookDelivery
	for rows.Next() {
		d := &ledgerd.WebhookDelivery{}
		var next time.Time
		var typ string
		if err := rows.Scan(&d.EventID, &typ, &d.Position.Sequence, &d.Position.Ordinal, &d.Status, &d.Attempts,
			&d.LastStatusCode, &d.LastError, &next, &d.DeliveredAt, &d.CreatedAt); err != nil {
			return nil, err
		}
		d.EventType = ledgerd.EventType(typ)
		if d.Status == ledgerd.DeliveryPending {
			next = next.UTC()
			d.NextAttemptAt = &next
		}
		if d.DeliveredAt != nil {
			t := d.DeliveredAt.UTC()
			d.DeliveredAt = &t
		}
		d.CreatedAt = d.CreatedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// RetryWebhookDelivery makes a pending or failed delivery due now. It
// reports the delivery's status before (pending or failed on success,
// delivered when there is nothing to retry) and false when the endpoint
// has no delivery of that event. A dead letter gets one more attempt: if
// that fails, it is dead-lettered again.
func (db *DB) RetryWebhookDelivery(ctx context.Context, endpointID, eventID string) (status string, found bool, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The endpoint's ledger's lock, for the audit entry's position.
		var ledgerID int64
		if ledgerd.AuditFrom(ctx) != nil {
			err := tx.QueryRow(ctx, `SELECT l.id FROM ledgers l JOIN webhook_endpoints w ON w.ledger_id = l.id
				WHERE w.id = $1 FOR UPDATE OF l`, endpointID).Scan(&ledgerID)
			if err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, `WITH d AS (SELECT id, status FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2),
			u AS (UPDATE webhook_deliveries w SET status = 'pending', next_attempt_at = clock_timestamp()
				FROM d WHERE w.id = d.id AND d.status <> 'delivered' AND w.locked_until IS NULL)
			SELECT status FROM d`, endpointID, eventID).Scan(&status)
		if err != nil || status == ledgerd.DeliveryDelivered || ledgerID == 0 {
			return err
		}
		return writeAudit(ctx, tx, ledgerID, eventID)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return status, err == nil, err
}

// ClaimDeliveries leases up to n due deliveries of enabled endpoints for
// one attempt each, at most perEndpoint per endpoint, or room[id] for the
// endpoints the caller has attempts in flight to already: one worker's
// cap, so that one slow endpoint cannot take all its slots. The cap is
// per worker rather than counted from the leases in the table because a
// worker killed with its leases would otherwise hold the endpoint's whole
// cap until they ran out. A lease that is not completed makes the delivery
// due again when it runs out: at least once, never lost.
func (db *DB) ClaimDeliveries(ctx context.Context, n, perEndpoint int, room map[string]int, lease time.Duration) ([]ledgerd.DeliveryTask, error) {
	ids := make([]string, 0, len(room))
	left := make([]int32, 0, len(room))
	for id, r := range room {
		ids, left = append(ids, id), append(left, int32(max(r, 0)))
	}
	rows, err := db.query(ctx, `WITH c AS (
			SELECT x.id FROM webhook_endpoints e
			CROSS JOIN LATERAL (
				SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
				WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
				ORDER BY d.next_attempt_at
				LIMIT coalesce((SELECT r.room FROM unnest($4::text[], $5::int[]) AS r(id, room) WHERE r.id = e.id), $2)
				FOR UPDATE OF d SKIP LOCKED) x
			WHERE e.status = 'enabled'
			ORDER BY x.next_attempt_at LIMIT $1)
		UPDATE webhook_deliveries d SET attempts = d.attempts + 1,
			locked_until = clock_timestamp() + $3 * interval '1 millisecond',
			next_attempt_at = clock_timestamp() + $3 * interval '1 millisecond'
		FROM c, webhook_endpoints e, ledgers l
		WHERE d.id = c.id AND e.id = d.endpoint_id AND l.id = d.ledger_id
		RETURNING d.id, d.attempts, d.event_id, d.event_type, d.ledger_id, l.name, d.seq, d.event_created_at, d.data::text,
			e.id, e.url, e.secret, coalesce(e.previous_secret, ''), coalesce(e.previous_until, 'epoch')`,
		n, perEndpoint, lease.Milliseconds(), ids, left)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledgerd.DeliveryTask
	for rows.Next() {
		var t ledgerd.DeliveryTask
		var typ, data string
		var ledgerID int64
		if err := rows.Scan(&t.ID, &t.Attempts, &t.Event.ID, &typ, &ledgerID, &t.Event.Ledger, &t.Event.Sequence,
			&t.Event.CreatedAt, &data, &t.Endpoint.ID, &t.Endpoint.URL, &t.Endpoint.Secret,
			&t.Endpoint.PreviousSecret, &t.Endpoint.PreviousUntil); err != nil {
			return nil, err
		}
		t.Event.Type = ledgerd.EventType(typ)
		t.Event.CreatedAt = t.Event.CreatedAt.UTC()
		t.Event.Data = []byte(data)
		t.Endpoint.LedgerID = ledgerID
		openSecrets(db.SecretKeys, &t.Endpoint)
		out = append(out, t)
	}
	return out, rows.Err()
}

// CompleteDeliveries writes the outcomes of attempts, in one statement. An
// outcome whose attempt count no longer matches (the lease ran out and
// another worker claimed the delivery again) is dropped: the newer attempt
// decides.
func (db *DB) CompleteDeliveries(ctx context.Context, rs []ledgerd.DeliveryResult) error {
	if len(rs) == 0 {
		return nil
	}
	ids := make([]int64, len(rs))
	attempts := make([]int32, len(rs))
	status := make([]string, len(rs))
	next := make([]time.Time, len(rs))
	codes := make([]int32, len(rs))
	errs := make([]string, len(rs))
	release := make([]bool, len(rs))
	for i, r := range rs {
		ids[i], attempts[i], status[i], next[i] = r.ID, int32(r.Attempts), r.Status, r.NextAttemptAt
		codes[i], errs[i], release[i] = int32(r.StatusCode), r.Err, r.Release
	}
	_, err := db.exec(ctx, `UPDATE webhook_deliveries d SET
			status = r.status,
			attempts = CASE WHEN r.release THEN d.attempts - 1 ELSE d.attempts END,
			next_attempt_at = r.next,
			locked_until = NULL,
			last_status_code = CASE WHEN r.release THEN d.last_status_code ELSE nullif(r.code, 0) END,
			last_error = CASE WHEN r.release THEN d.last_error ELSE nullif(r.err, '') END,
			delivered_at = CASE WHEN r.status = 'delivered' THEN clock_timestamp() END
		FROM unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[], $5::int[], $6::text[], $7::bool[])
			AS r(id, attempts, status, next, code, err, release)
		WHERE d.id = r.id AND d.attempts = r.attempts AND d.status = 'pending'`,
		ids, attempts, status, next, codes, errs, release)
	return err
}

// DeleteDeliveredSQL deletes up to $2 delivered rows delivered before $1.
// By ctid, as the other retention deletes: with id IN (…) the planner
// joined the batch's ids by hashing them against a sequential scan of the
// whole table (0.4 s a statement at 1.4 M rows, once per 10,000 rows
// deleted: docs/queries.md #64).
const DeleteDeliveredSQL = `DELETE FROM webhook_deliveries WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < $1 LIMIT $2))`

// DeleteDeliveredBefore deletes up to limit delivered rows older than
// before: the delivery log keeps what is pending or dead-lettered for as
// long as it is, and successes for the retention period.
func (db *DB) DeleteDeliveredBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := db.exec(ctx, DeleteDeliveredSQL, before, limit)
	return tag.RowsAffected(), err
}
