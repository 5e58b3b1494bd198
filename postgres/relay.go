package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/atrest"
)

// ReadFunc reads a page of a ledger's events in order after a position,
// never past what is committed in the snapshot it reads.
type ReadFunc = func(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error)

// FirstFunc makes the first attempts of a relay step's deliveries to
// healthy endpoints, within a bound the worker sets, and reports what
// became of each (one FirstAttempt per task, in order).
type FirstFunc = func(ctx context.Context, tasks []ledgerd.DeliveryTask) []ledgerd.FirstAttempt

// RelayNextLedgerSQL takes the cursor of consumer $1 that is behind its
// ledger (a transaction or an events row past it) and moved longest ago,
// skipping those other workers hold: round robin over the ledgers.
//
// Whether an events row lies past a cursor is the ledger's newest row
// compared with it: one backward probe of events_position. Asked as
// EXISTS (… (after_sequence, ordinal) > (seq, ord)) inside the OR, the
// planner scanned the whole events table once per caught-up ledger on
// every poll (8.7 ms on the data of scripts/explain.sh, 13,333 events
// over 9 ledgers; 0.05 ms this way: docs/queries.md #60).
const RelayNextLedgerSQL = `SELECT c.ledger_id, l.name, c.seq, c.ord FROM event_cursors c
	JOIN ledgers l ON l.id = c.ledger_id
	WHERE c.consumer = $1 AND (l.last_sequence > c.seq OR EXISTS (SELECT 1 FROM (
		SELECT e.after_sequence, e.ordinal FROM events e WHERE e.ledger_id = c.ledger_id
		ORDER BY e.after_sequence DESC, e.ordinal DESC LIMIT 1) n WHERE (n.after_sequence, n.ordinal) > (c.seq, c.ord)))
	ORDER BY c.updated_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED`

// RelayTargetsSQL matches a page of events ($2-$4: types and positions)
// against ledger $1's endpoints (relayTargets).
const RelayTargetsSQL = `WITH e AS (
		SELECT e.id, e.url, e.secret, coalesce(e.previous_secret, '') AS prev, coalesce(e.previous_until, 'epoch') AS prev_until,
			e.event_types, e.status = 'enabled' AND e.gone_at IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
				WHERE d.endpoint_id = e.id AND d.status = 'pending') AS healthy
		FROM webhook_endpoints e WHERE e.ledger_id = $1)
	SELECT ev.i, e.id, e.url, e.secret, e.prev, e.prev_until, e.healthy
	FROM unnest($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS ev(typ, seq, ord, i)
	JOIN e ON e.event_types IS NULL OR ev.typ = ANY (e.event_types)
	WHERE EXISTS (SELECT 1 FROM webhook_endpoint_periods p WHERE p.endpoint_id = e.id
		AND (ev.seq, ev.ord) > (p.start_seq, p.start_ord)
		AND (p.end_seq IS NULL OR (ev.seq, ev.ord) <= (p.end_seq, p.end_ord)))
	ORDER BY ev.i, e.id`

// InsertDeliveriesSQL records a relay step's deliveries (insertDeliveries).
const InsertDeliveriesSQL = `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at,
		data, status, attempts, next_attempt_at, locked_until, last_status_code, last_error, delivered_at)
	SELECT e.id, r.id, $1, r.seq, r.ord, r.typ, r.created, nullif(r.data, '')::json,
		CASE WHEN e.gone_at IS NOT NULL AND r.status = 'pending' AND NOT r.open THEN 'failed' ELSE r.status END,
		r.attempts,
		-- An open attempt's lease is the claim's: due again (and
		-- claimable) only when it runs out.
		CASE WHEN r.open THEN clock_timestamp() + $15 * interval '1 millisecond' ELSE r.next END,
		CASE WHEN r.open THEN clock_timestamp() + $15 * interval '1 millisecond' END,
		nullif(r.code, 0),
		CASE WHEN e.gone_at IS NOT NULL AND r.status = 'pending' AND NOT r.open THEN '410 Gone: endpoint disabled'
			ELSE nullif(r.err, '') END,
		CASE WHEN r.status = 'delivered' THEN r.next END
	FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::timestamptz[], $8::text[],
			$9::text[], $10::int[], $11::timestamptz[], $12::bool[], $13::int[], $14::text[])
		AS r(ep, id, seq, ord, typ, created, data, status, attempts, next, open, code, err)
	JOIN webhook_endpoints e ON e.id = r.ep
	FOR SHARE OF e
	ON CONFLICT (endpoint_id, event_id) DO NOTHING
	RETURNING id, endpoint_id, event_id, locked_until IS NOT NULL`

// TailStatsSQL samples the tail's backlog for consumer $1 (TailStats).
const TailStatsSQL = `SELECT
	coalesce((SELECT sum(l.last_sequence - c.seq + (SELECT count(*) FROM (SELECT 1 FROM events e
			WHERE e.ledger_id = c.ledger_id AND (e.after_sequence, e.ordinal) > (c.seq, c.ord) LIMIT 100000) x))
		FROM event_cursors c JOIN ledgers l ON l.id = c.ledger_id WHERE c.consumer = $1), 0)::bigint,
	coalesce((SELECT max(extract(epoch FROM clock_timestamp() - t.created_at)) FROM event_cursors c
		JOIN ledgers l ON l.id = c.ledger_id AND l.last_sequence > c.seq
		JOIN transactions t ON t.ledger_id = c.ledger_id AND t.sequence = c.seq + 1
		WHERE c.consumer = $1), 0)::float8,
	(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
	(SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'),
	(SELECT count(*) FROM webhook_endpoints WHERE status = 'disabled')`

// RelayStep moves one ledger's cursor of consumer: it takes a cursor that
// is behind its ledger and that no other worker holds (FOR UPDATE SKIP
// LOCKED), reads up to limit events after it, and records one delivery per
// event and matching endpoint (set-based; ON CONFLICT DO NOTHING makes a
// repeated step harmless), then moves the cursor to where the read
// stopped, all in one transaction: a worker killed anywhere in it leaves
// either the whole step or none of it (and, if it had attempted some
// deliveries already, they are attempted again: at least once).
//
// Deliveries to an endpoint that is enabled and has nothing pending (a
// healthy one) are first handed to first, while the cursor is held, and
// recorded with their outcome; the rest are queued for the delivery loop.
// The transaction stays open while first runs, which the worker bounds to
// a fraction of a second. Open attempts come back, with their rows' ids,
// for the worker to settle after the commit.
//
// It returns how many events it read (at least 1 when the cursor moved);
// 0 when no ledger is behind.
func (db *DB) RelayStep(ctx context.Context, consumer string, limit int, read ReadFunc, first FirstFunc,
	lease time.Duration) (n int, open []ledgerd.DeliveryTask, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		open = nil
		var ledgerID int64
		var name string
		var cur ledgerd.EventPosition
		// Round robin over the ledgers that are behind (a transaction or
		// an events row past the cursor): the one whose cursor moved
		// longest ago first.
		err := tx.QueryRow(ctx, RelayNextLedgerSQL, consumer).Scan(&ledgerID, &name, &cur.Sequence, &cur.Ordinal)
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
			// The endpoints are read after the page: an endpoint switched
			// on or off after the page was read switched at a position
			// after every event on it, so the page's matches are final.
			ts, err := relayTargets(ctx, tx, db.SecretKeys, ledgerID, page.Events)
			if err != nil {
				return err
			}
			firsts := attemptFirst(ctx, ts, first)
			if open, err = insertDeliveries(ctx, tx, ledgerID, ts, firsts, lease); err != nil {
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
	if err != nil {
		open = nil
	}
	return n, open, err
}

// relayTarget is one delivery a relay step records: an event and an
// endpoint that takes it.
type relayTarget struct {
	task ledgerd.DeliveryTask
	// healthy: the endpoint is enabled, not gone and has nothing pending,
	// so the relay may attempt the delivery at once.
	healthy bool
}

// relayTargets matches a page of events against the ledger's endpoints:
// one target per event and endpoint that was enabled at the event's
// position and takes its type, with the endpoint's secrets opened.
func relayTargets(ctx context.Context, tx pgx.Tx, keys *atrest.Keys, ledgerID int64, evs []ledgerd.Event) ([]relayTarget, error) {
	types := make([]string, len(evs))
	seqs := make([]int64, len(evs))
	ords := make([]int64, len(evs))
	for i := range evs {
		types[i], seqs[i], ords[i] = string(evs[i].Type), evs[i].Position.Sequence, evs[i].Position.Ordinal
	}
	rows, err := tx.Query(ctx, RelayTargetsSQL, ledgerID, types, seqs, ords)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []relayTarget
	for rows.Next() {
		var t relayTarget
		var i int64
		ep := &t.task.Endpoint
		if err := rows.Scan(&i, &ep.ID, &ep.URL, &ep.Secret, &ep.PreviousSecret, &ep.PreviousUntil, &t.healthy); err != nil {
			return nil, err
		}
		ep.LedgerID = ledgerID
		openSecrets(keys, ep)
		t.task.Event = evs[i-1]
		t.task.Attempts = 1
		out = append(out, t)
	}
	return out, rows.Err()
}

// attemptFirst hands the healthy targets to first and returns one
// FirstAttempt per target (not made for the others).
func attemptFirst(ctx context.Context, ts []relayTarget, first FirstFunc) []ledgerd.FirstAttempt {
	out := make([]ledgerd.FirstAttempt, len(ts))
	if first == nil {
		return out
	}
	var tasks []ledgerd.DeliveryTask
	var at []int
	for i := range ts {
		if ts[i].healthy {
			tasks, at = append(tasks, ts[i].task), append(at, i)
		}
	}
	if len(tasks) == 0 {
		return out
	}
	for k, f := range first(ctx, tasks) {
		out[at[k]] = f
	}
	return out
}

// insertDeliveries records the targets' deliveries: with the outcome of
// their first attempt when one was made (a delivered row keeps no copy of
// the event, which nothing will send again), queued due now otherwise,
// and leased to this worker for an open attempt. It returns the open
// attempts' tasks with their rows' ids.
func insertDeliveries(ctx context.Context, tx pgx.Tx, ledgerID int64, ts []relayTarget, fs []ledgerd.FirstAttempt,
	lease time.Duration) ([]ledgerd.DeliveryTask, error) {
	k := len(ts)
	eps, ids, types, status, data, errs := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	seqs, ords := make([]int64, k), make([]int64, k)
	attempts, codes := make([]int32, k), make([]int32, k)
	created, next := make([]time.Time, k), make([]time.Time, k)
	opens := make([]bool, k)
	now := time.Now()
	for i := range ts {
		ev, f := &ts[i].task.Event, fs[i]
		eps[i], ids[i], types[i] = ts[i].task.Endpoint.ID, ev.ID, string(ev.Type)
		seqs[i], ords[i], created[i] = ev.Position.Sequence, ev.Position.Ordinal, ev.CreatedAt
		status[i], next[i], data[i] = ledgerd.DeliveryPending, now, string(ev.Data)
		switch {
		case f.Open:
			attempts[i], opens[i] = 1, true
		case f.Made:
			r := f.Result
			status[i], next[i], attempts[i] = r.Status, r.NextAttemptAt, 1
			codes[i], errs[i] = int32(r.StatusCode), r.Err
			if r.Status == ledgerd.DeliveryDelivered {
				data[i] = ""
			}
		}
	}
	// An event committed while its endpoint was enabled but relayed after
	// the endpoint answered 410 is recorded as failed at once, as the 410
	// did with what was pending then. FOR SHARE orders this against that
	// (which takes the endpoint FOR NO KEY UPDATE): either it sees these
	// rows and fails them, or this sees gone_at set.
	rows, err := tx.Query(ctx, InsertDeliveriesSQL,
		ledgerID, eps, ids, seqs, ords, types, created, data, status, attempts, next, opens, codes, errs, lease.Milliseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct{ ep, ev string }
	var leased map[key]int64
	for rows.Next() {
		var id int64
		var ep, ev string
		var isOpen bool
		if err := rows.Scan(&id, &ep, &ev, &isOpen); err != nil {
			return nil, err
		}
		if isOpen {
			if leased == nil {
				leased = map[key]int64{}
			}
			leased[key{ep, ev}] = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var open []ledgerd.DeliveryTask
	for i := range ts {
		if id, ok := leased[key{eps[i], ids[i]}]; ok && opens[i] {
			t := ts[i].task
			t.ID = id
			open = append(open, t)
		}
	}
	return open, nil
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
	err := db.queryRow(ctx, TailStatsSQL, consumer).
		Scan(&s.LagEvents, &s.LagSeconds, &s.Pending, &s.Failed, &s.DisabledEndpoints)
	return s, err
}
