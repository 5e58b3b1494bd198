package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// eventScanBudget bounds the rows one read of events looks at on each side
// (transactions, events rows) when a type filter may skip rows: a consumer
// asking for a rare type over millions of transactions gets a short (or
// empty) page with a next position after at most this many rows, never a
// scan of the whole log. Without a filter on a side, the budget is the
// page's limit, since every row read is returned.
var eventScanBudget = 10_000

// txEventTypeSQL is ledgerd.EventTypeOf in SQL, so that a type filter is
// applied while scanning the log rather than after reading every row. The
// rows it would call "" do not exist (they would be a write-path bug), and
// TestReadEvents checks it against EventTypeOf for every kind.
const txEventTypeSQL = `CASE
	WHEN t.pending_id IS NOT NULL THEN CASE t.status WHEN 'posted' THEN 'transaction.captured'
		WHEN 'voided' THEN 'transaction.voided' WHEN 'expired' THEN 'transaction.expired' END
	WHEN t.reverses IS NOT NULL THEN 'transaction.reversed'
	WHEN t.status <> 'posted' OR t.resolved_by IS NOT NULL THEN 'transaction.pending'
	ELSE 'transaction.posted' END`

// ReadEventsSQL (exported for scripts/explaindb) reads one page in one statement, so that every part of it
// sees one snapshot: the ledger's last_sequence (head) bounds both sides,
// and a snapshot that sees head = S sees every transaction up to S and
// every events row committed before it (docs/api.md §Events).
//
// $1 ledger, $2/$3 the position read after, $4 the types (NULL: all), $5
// the page's limit, $6 the highest sequence the transaction side may
// read, $7 the most events rows read, $8/$9 whether the events rows / the
// transactions are read at all.
//
// Rows: one 'h' row (sequence = hi, the last sequence within reach;
// ordinal = head; id = the transaction at hi; n = events rows read), one
// 'e' row with the last events row read (if any), then up to $5
// transactions ('t') and $5 events rows ('v') of the wanted types. The
// caller merges them and cuts at the position the scan reached.
const ReadEventsSQL = `WITH b AS (
	SELECT last_sequence AS head, least(last_sequence, $6) AS hi FROM ledgers WHERE id = $1
), ev AS (
	SELECT e.id, e.after_sequence, e.ordinal, e.type, e.data, e.created_at FROM events e
	WHERE $8 AND e.ledger_id = $1 AND (e.after_sequence, e.ordinal) > ($2, $3)
		AND (e.after_sequence, e.ordinal) <= ((SELECT hi FROM b),
			(SELECT CASE WHEN hi = head THEN 9223372036854775807 ELSE 0 END FROM b))
	ORDER BY e.after_sequence, e.ordinal LIMIT $7
)
SELECT 'h', (SELECT t.id FROM transactions t WHERE t.ledger_id = $1 AND t.sequence = b.hi), b.hi, b.head,
	NULL, NULL::json, NULL::timestamptz, NULL, NULL::json, NULL::json, NULL, NULL::timestamptz,
	NULL::uuid, NULL::uuid, NULL::uuid, NULL::uuid, (SELECT count(*) FROM ev)
FROM b
UNION ALL
(SELECT 'e', ev.id, ev.after_sequence, ev.ordinal, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, NULL
FROM ev ORDER BY ev.after_sequence DESC, ev.ordinal DESC LIMIT 1)
UNION ALL
(SELECT 't', t.id, t.sequence, 0, NULL, NULL, t.created_at, t.status, t.postings, t.metadata, t.reference,
	t.expires_at, t.pending_id, t.resolved_by, t.reverses, t.reversed_by, NULL
FROM transactions t
WHERE $9 AND t.ledger_id = $1 AND t.sequence > $2 AND t.sequence <= (SELECT hi FROM b)
	AND ($4::text[] IS NULL OR ` + txEventTypeSQL + ` = ANY ($4::text[]))
ORDER BY t.sequence LIMIT $5)
UNION ALL
(SELECT 'v', ev.id, ev.after_sequence, ev.ordinal, ev.type, ev.data, ev.created_at, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, NULL, NULL
FROM ev WHERE $4::text[] IS NULL OR ev.type = ANY ($4::text[])
ORDER BY ev.after_sequence, ev.ordinal LIMIT $5)`

// isTxEventType reports whether events of type t are transactions of the
// log (rather than rows of the events table).
func isTxEventType(t ledgerd.EventType) bool {
	switch t {
	case ledgerd.EventTransactionPosted, ledgerd.EventTransactionPending, ledgerd.EventTransactionCaptured,
		ledgerd.EventTransactionVoided, ledgerd.EventTransactionExpired, ledgerd.EventTransactionReversed:
		return true
	}
	return false
}

const txEventTypes = 6

// ReadEvents reads a page of ledger ledgerID's events after q.After, in
// order, their Ledger set to ledgerName. One statement, index range scans
// on both sides, no query per event: a transaction's data is rendered
// from its own row (postings are stored with it), as it was committed
// (wire.AsCommitted); an events row's data is stored.
func (db *DB) ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error) {
	limit := max(q.Limit, 1)
	var types []string
	nTx, nOther := 0, 0
	for _, t := range q.Types {
		if slices.Contains(types, string(t)) {
			continue
		}
		types = append(types, string(t))
		if isTxEventType(t) {
			nTx++
		} else {
			nOther++
		}
	}
	txOn, evOn := true, true
	txBudget, evBudget := limit, limit
	var typesArg any // NULL: every type
	if len(types) > 0 {
		typesArg = types
		txOn, evOn = nTx > 0, nOther > 0
		if nTx < txEventTypes {
			txBudget = max(limit, eventScanBudget)
		}
		// The events table's types are open-ended (more come with later
		// changes), so a filter on that side always reads within the budget.
		evBudget = max(limit, eventScanBudget)
	}
	after := q.After
	txCap := int64(math.MaxInt64)
	if txOn {
		txCap = after.Sequence + min(int64(txBudget), math.MaxInt64-after.Sequence)
	}
	rows, err := db.query(ctx, ReadEventsSQL, ledgerID, after.Sequence, after.Ordinal, typesArg, limit,
		txCap, evBudget, evOn, txOn)
	if err != nil {
		return ledgerd.EventPage{}, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()

	var (
		hi, head, evRead int64
		hiTx             string
		evLast           ledgerd.EventPosition
		evLastID         string
		haveHead         bool
		cands            []ledgerd.Event
	)
	var (
		kind                         string
		id, pend, resBy, revs, revBy pgtype.UUID
		seq, ord                     int64
		typ, status, reference       *string
		data, postings, metadata     []byte
		createdAt                    pgtype.Timestamptz
		expiresAt                    *time.Time
		n                            *int64
	)
	for rows.Next() {
		if err := rows.Scan(&kind, &id, &seq, &ord, &typ, &data, &createdAt, &status, &postings, &metadata,
			&reference, &expiresAt, &pend, &resBy, &revs, &revBy, &n); err != nil {
			return ledgerd.EventPage{}, err
		}
		switch kind {
		case "h":
			haveHead = true
			hi, head, hiTx = seq, ord, uuidString(id)
			if n != nil {
				evRead = *n
			}
		case "e":
			evLast, evLastID = ledgerd.EventPosition{Sequence: seq, Ordinal: ord}, ledgerd.EventIDPrefix+uuidString(id)
		case "t":
			t := &ledgerd.Transaction{ID: uuidString(id), Sequence: seq, Status: ledgerd.Status(*status),
				RawPostings: postings, RawMetadata: metadata, CreatedAt: createdAt.Time.UTC(), ExpiresAt: expiresAt,
				PendingID: uuidString(pend), ResolvedBy: uuidString(resBy), Reverses: uuidString(revs), ReversedBy: uuidString(revBy)}
			if reference != nil {
				t.Reference = *reference
			}
			if t.ExpiresAt != nil {
				u := t.ExpiresAt.UTC()
				t.ExpiresAt = &u
			}
			c := wire.AsCommitted(t)
			ev, ok := ledgerd.TransactionEvent(ledgerName, c, wire.AppendTransaction(nil, c))
			if !ok {
				return ledgerd.EventPage{}, fmt.Errorf("transaction %s (sequence %d) is of no known event type", t.ID, t.Sequence)
			}
			cands = append(cands, ev)
		case "v":
			cands = append(cands, ledgerd.Event{ID: ledgerd.EventIDPrefix + uuidString(id), Type: ledgerd.EventType(*typ),
				Ledger: ledgerName, Position: ledgerd.EventPosition{Sequence: seq, Ordinal: ord},
				CreatedAt: createdAt.Time.UTC(), Data: append([]byte(nil), data...)})
		}
	}
	if err := rows.Err(); err != nil {
		return ledgerd.EventPage{}, fmt.Errorf("read events: %w", err)
	}
	if !haveHead {
		return ledgerd.EventPage{}, fmt.Errorf("read events: no ledger %d", ledgerID)
	}
	return pageOf(cands, q.After, limit, scanReach{hi: hi, head: head, hiTx: hiTx,
		evTruncated: evOn && evRead >= int64(evBudget), evLast: evLast, evLastID: evLastID}), nil
}

// scanReach is how far one read of events got.
type scanReach struct {
	hi, head    int64  // the transaction side read up to sequence hi; head is the ledger's last sequence
	hiTx        string // the transaction at hi
	evTruncated bool   // the events-row side stopped at its budget, at evLast
	evLast      ledgerd.EventPosition
	evLastID    string
}

// pageOf merges the candidates of both sides into a page: in order, only
// up to the position both sides reached (beyond it one side has not been
// read), at most limit.
func pageOf(cands []ledgerd.Event, after ledgerd.EventPosition, limit int, r scanReach) ledgerd.EventPage {
	// The reach: everything up to (hi, 0) was read when hi is not the
	// head; at the head, everything committed.
	end := r.hi >= r.head
	bound := ledgerd.EventPosition{Sequence: r.hi}
	boundID := ""
	if r.hiTx != "" {
		boundID = ledgerd.TransactionEventID(r.hiTx)
	}
	if r.evTruncated && (end || r.evLast.Less(bound)) {
		bound, boundID, end = r.evLast, r.evLastID, false
	}
	slices.SortFunc(cands, func(a, b ledgerd.Event) int {
		switch {
		case a.Position.Less(b.Position):
			return -1
		case b.Position.Less(a.Position):
			return 1
		}
		return 0
	})
	if !end {
		i := 0
		for i < len(cands) && !bound.Less(cands[i].Position) {
			i++
		}
		cands = cands[:i]
	}
	p := ledgerd.EventPage{Events: cands, Next: after}
	switch {
	case len(cands) >= limit:
		p.Events = cands[:limit]
		last := p.Events[limit-1]
		p.More, p.Next, p.NextID = true, last.Position, last.ID
	case !end && after.Less(bound) && boundID != "":
		p.More, p.Next, p.NextID = true, bound, boundID
	case len(cands) > 0:
		last := cands[len(cands)-1]
		p.Next, p.NextID = last.Position, last.ID
	}
	return p
}

// EventPositionSQL finds an event id's position: a transaction (by its
// primary key, which prunes to one partition) or an events row.
const EventPositionSQL = `SELECT sequence, 0::bigint FROM transactions WHERE id = $2 AND ledger_id = $1
	UNION ALL SELECT after_sequence, ordinal FROM events WHERE id = $2 AND ledger_id = $1`

// EventPosition returns the position of event eventID of ledger ledgerID,
// for reading on after it; ok is false when the ledger has no such event
// (a malformed id, another ledger's event).
func (db *DB) EventPosition(ctx context.Context, ledgerID int64, eventID string) (pos ledgerd.EventPosition, ok bool, err error) {
	s, isID := ledgerd.TransactionIDOfEvent(eventID)
	if !isID {
		return pos, false, nil
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return pos, false, nil
	}
	rows, err := db.query(ctx, EventPositionSQL, ledgerID, pgtype.UUID{Bytes: u, Valid: true})
	if err != nil {
		return pos, false, fmt.Errorf("event position: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&pos.Sequence, &pos.Ordinal); err != nil {
			return pos, false, err
		}
		ok = true
	}
	return pos, ok, rows.Err()
}
