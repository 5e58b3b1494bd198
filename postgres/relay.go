package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// RelayStep moves one ledger's cursor of consumer: it takes a cursor that
// is behind its ledger and that no other worker holds (FOR UPDATE SKIP
// LOCKED), reads up to limit events after it, inserts one delivery per
// event and matching endpoint (set-based; ON CONFLICT DO NOTHING makes a
// repeated step harmless), and moves the cursor to where the read stopped,
// all in one transaction: a worker killed anywhere in it leaves either the
// whole step or none of it. It returns how many events it read (at least
// 1 when the cursor moved); 0 when no ledger is behind.
//
// read reads a page of a ledger's events after a position, in order,
// never past what is committed in the snapshot it reads.
func (db *DB) RelayStep(ctx context.Context, consumer string, limit int,
	read func(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error),
) (int, error) {
	n := 0
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		var ledgerID int64
		var name string
		var cur ledgerd.EventPosition
		// Round robin over the ledgers that are behind (a transaction or
		// an events row past the cursor): the one whose cursor moved
		// longest ago first.
		err := tx.QueryRow(ctx, `SELECT c.ledger_id, l.name, c.seq, c.ord FROM event_cursors c
			JOIN ledgers l ON l.id = c.ledger_id
			WHERE c.consumer = $1 AND (l.last_sequence > c.seq OR EXISTS (SELECT 1 FROM events e
				WHERE e.ledger_id = c.ledger_id AND (e.after_sequence, e.ordinal) > (c.seq, c.ord)))
			ORDER BY c.updated_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED`, consumer).Scan(&ledgerID, &name, &cur.Sequence, &cur.Ordinal)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		page, err := read(ctx, ledgerID, name, ledgerd.EventQuery{After: cur, Limit: limit})
		if err != nil {
			return err
		}
		if !cur.Less(page.Next) {
			return nil
		}
		var lastAt *time.Time
		if k := len(page.Events); k > 0 {
			if err := insertDeliveries(ctx, tx, ledgerID, page.Events); err != nil {
				return err
			}
			lastAt = &page.Events[k-1].CreatedAt
		}
		_, err = tx.Exec(ctx, `UPDATE event_cursors SET seq = $3, ord = $4, last_event_at = coalesce($5, last_event_at),
			updated_at = clock_timestamp() WHERE consumer = $1 AND ledger_id = $2`,
			consumer, ledgerID, page.Next.Sequence, page.Next.Ordinal, lastAt)
		n = max(len(page.Events), 1)
		return err
	})
	return n, err
}

// insertDeliveries inserts a delivery for each event and each endpoint of
// the ledger that was enabled at the event's position and takes its type.
func insertDeliveries(ctx context.Context, tx pgx.Tx, ledgerID int64, evs []ledgerd.Event) error {
	ids := make([]string, len(evs))
	types := make([]string, len(evs))
	seqs := make([]int64, len(evs))
	ords := make([]int64, len(evs))
	created := make([]time.Time, len(evs))
	data := make([]string, len(evs))
	for i := range evs {
		p := evs[i].Position
		ids[i], types[i], seqs[i], ords[i] = evs[i].ID, string(evs[i].Type), p.Sequence, p.Ordinal
		created[i], data[i] = evs[i].CreatedAt, string(evs[i].Data)
	}
	// An event committed while its endpoint was enabled but relayed after
	// the endpoint answered 410 is recorded as failed at once, as the 410
	// did with what was pending then. FOR SHARE orders this against that
	// (which takes the endpoint FOR NO KEY UPDATE): either it sees these
	// rows and fails them, or this sees gone_at set.
	_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at, data,
			status, last_error)
		SELECT e.id, ev.id, $1, ev.seq, ev.ord, ev.typ, ev.created, ev.data::json,
			CASE WHEN e.gone_at IS NULL THEN 'pending' ELSE 'failed' END,
			CASE WHEN e.gone_at IS NULL THEN NULL ELSE '410 Gone: endpoint disabled' END
		FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::text[])
			AS ev(id, typ, seq, ord, created, data)
		JOIN webhook_endpoints e ON e.ledger_id = $1 AND (e.event_types IS NULL OR ev.typ = ANY (e.event_types))
		WHERE EXISTS (SELECT 1 FROM webhook_endpoint_periods p WHERE p.endpoint_id = e.id
			AND (ev.seq, ev.ord) > (p.start_seq, p.start_ord)
			AND (p.end_seq IS NULL OR (ev.seq, ev.ord) <= (p.end_seq, p.end_ord)))
		FOR SHARE OF e
		ON CONFLICT (endpoint_id, event_id) DO NOTHING`, ledgerID, ids, types, seqs, ords, created, data)
	return err
}

// TailStats is what the tail's metrics sample.
type TailStats struct {
	// LagEvents is how many events the consumer has yet to relay, over
	// all ledgers (transactions, and events rows counted up to 100,000 a
	// ledger); LagSeconds the age of the oldest transaction among them.
	LagEvents  int64
	LagSeconds float64
	// Deliveries by status (delivered rows are not counted: they are many,
	// and the workers count successes as they go).
	Pending, Failed int64
	// DisabledEndpoints is how many endpoints are disabled.
	DisabledEndpoints int64
}

// TailStats samples the tail's backlog for consumer.
func (db *DB) TailStats(ctx context.Context, consumer string) (TailStats, error) {
	var s TailStats
	err := db.queryRow(ctx, `SELECT
		coalesce((SELECT sum(l.last_sequence - c.seq + (SELECT count(*) FROM (SELECT 1 FROM events e
				WHERE e.ledger_id = c.ledger_id AND (e.after_sequence, e.ordinal) > (c.seq, c.ord) LIMIT 100000) x))
			FROM event_cursors c JOIN ledgers l ON l.id = c.ledger_id WHERE c.consumer = $1), 0)::bigint,
		coalesce((SELECT max(extract(epoch FROM clock_timestamp() - t.created_at)) FROM event_cursors c
			JOIN ledgers l ON l.id = c.ledger_id AND l.last_sequence > c.seq
			JOIN transactions t ON t.ledger_id = c.ledger_id AND t.sequence = c.seq + 1
			WHERE c.consumer = $1), 0)::float8,
		(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
		(SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'),
		(SELECT count(*) FROM webhook_endpoints WHERE status = 'disabled')`, consumer).
		Scan(&s.LagEvents, &s.LagSeconds, &s.Pending, &s.Failed, &s.DisabledEndpoints)
	return s, err
}
