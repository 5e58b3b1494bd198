package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// MonitorConsumer is the event_cursors consumer of the monitor evaluator.
const MonitorConsumer = "monitors"

func newMonitorID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "mon_" + hex.EncodeToString(b[:])
}

const monitorCols = `id, ledger_id, account_id, field, operator, value, email, description, triggers, last_triggered_at, created_at`

func scanMonitor(r pgx.Row) (*ledgerd.Monitor, error) {
	m := &ledgerd.Monitor{}
	err := r.Scan(&m.ID, &m.LedgerID, &m.Account, &m.Condition.Field, &m.Condition.Operator, &m.Condition.Value, &m.Email,
		&m.Description, &m.Triggers, &m.LastTriggeredAt, &m.CreatedAt)
	if err != nil {
		return nil, err
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if m.LastTriggeredAt != nil {
		u := m.LastTriggeredAt.UTC()
		m.LastTriggeredAt = &u
	}
	if m.Email == nil {
		m.Email = []string{}
	}
	return m, nil
}

// CreateMonitor stores a new monitor of an existing account, evaluated
// from the ledger's current position on, and fills in its id and time. An
// account that does not exist is account_not_found.
func (db *DB) CreateMonitor(ctx context.Context, m *ledgerd.Monitor) error {
	m.ID = newMonitorID()
	if m.Email == nil {
		m.Email = []string{}
	}
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		// The ordering lock makes the start unambiguous: every transaction
		// committed later has a greater sequence.
		var start int64
		if err := tx.QueryRow(ctx, `SELECT last_sequence FROM ledgers WHERE id = $1 FOR UPDATE`, m.LedgerID).Scan(&start); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO monitors (id, ledger_id, account_id, field, operator, value, email, description, start_seq, evaluated_seq)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 WHERE EXISTS (SELECT 1 FROM accounts WHERE ledger_id = $2 AND id = $3)
			RETURNING created_at`, m.ID, m.LedgerID, m.Account, m.Condition.Field, m.Condition.Operator, m.Condition.Value,
			m.Email, m.Description, start).Scan(&m.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return &ledgerd.Error{Code: ledgerd.CodeAccountNotFound, Detail: "account " + m.Account + " does not exist"}
		}
		if err != nil {
			return err
		}
		m.CreatedAt = m.CreatedAt.UTC()
		// The evaluator starts this ledger where its first monitor starts.
		_, err = tx.Exec(ctx, `INSERT INTO event_cursors (consumer, ledger_id, seq, ord) VALUES ($1, $2, $3, 0)
			ON CONFLICT (consumer, ledger_id) DO NOTHING`, MonitorConsumer, m.LedgerID, start)
		return err
	})
}

// Monitor returns a ledger's monitor, or nil.
func (db *DB) Monitor(ctx context.Context, ledgerID int64, id string) (*ledgerd.Monitor, error) {
	m, err := scanMonitor(db.queryRow(ctx, `SELECT `+monitorCols+` FROM monitors WHERE ledger_id = $1 AND id = $2`, ledgerID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return m, err
}

// ListMonitors lists a ledger's monitors by id, after the given id, at
// most limit.
func (db *DB) ListMonitors(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.Monitor, error) {
	rows, err := db.query(ctx, `SELECT `+monitorCols+` FROM monitors WHERE ledger_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		ledgerID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledgerd.Monitor
	for rows.Next() {
		m, err := scanMonitor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteMonitor deletes a monitor; false when the ledger has none by that
// id. E-mails it already queued are still sent.
func (db *DB) DeleteMonitor(ctx context.Context, ledgerID int64, id string) (bool, error) {
	tag, err := db.exec(ctx, `DELETE FROM monitors WHERE ledger_id = $1 AND id = $2`, ledgerID, id)
	return tag.RowsAffected() == 1, err
}

// MonitorRender builds a trigger's e-mail.
type MonitorRender func(t *ledgerd.MonitorTrigger) (subject, body string, err error)

// MonitorStepResult is what one evaluation step did.
type MonitorStepResult struct {
	Read     int // transactions evaluated (at least 1 when the cursor moved)
	Triggers int
	Emails   int
}

// entryState is an account's balances after one transaction.
type entryState struct {
	seq     int64
	tx      string
	at      time.Time
	balance ledgerd.Balance
}

// MonitorStep evaluates the monitors of one ledger whose cursor is behind
// (taken FOR UPDATE SKIP LOCKED, so workers share the ledgers) over up to
// limit transactions after it. Each monitored account's balances before
// and after every transaction that touched it are read from the entries
// (which carry the running balances after each transaction), so many
// transactions in one step are judged as exactly as one. Each crossing
// writes a monitor.triggered event (under the ledger's ordering lock, like
// every events row) and, when the monitor has recipients, an e-mail row;
// those, the monitors' state and the cursor commit together, so a worker
// that stops anywhere in the step leaves all of it or none.
func (db *DB) MonitorStep(ctx context.Context, limit int, render MonitorRender) (MonitorStepResult, error) {
	var res MonitorStepResult
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		res = MonitorStepResult{}
		var ledgerID, cur, hi int64
		var name string
		err := tx.QueryRow(ctx, `SELECT c.ledger_id, l.name, c.seq, least(l.last_sequence, c.seq + $2) FROM event_cursors c
			JOIN ledgers l ON l.id = c.ledger_id
			WHERE c.consumer = $1 AND l.last_sequence > c.seq
			ORDER BY c.updated_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED`, MonitorConsumer, limit).Scan(&ledgerID, &name, &cur, &hi)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Read = int(hi - cur)
		mons, starts, err := ledgerMonitors(ctx, tx, ledgerID)
		if err != nil {
			return err
		}
		var trig []ledgerd.MonitorTrigger
		if len(mons) > 0 {
			if trig, err = evaluate(ctx, tx, ledgerID, cur, hi, mons, starts); err != nil {
				return err
			}
			for i := range trig {
				trig[i].Ledger = name
			}
		}
		if err := recordTriggers(ctx, tx, ledgerID, trig, render, &res); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE event_cursors SET seq = $3, updated_at = clock_timestamp(),
			last_event_at = (SELECT created_at FROM transactions WHERE ledger_id = $2 AND sequence = $3)
			WHERE consumer = $1 AND ledger_id = $2`, MonitorConsumer, ledgerID, hi)
		return err
	})
	return res, err
}

func ledgerMonitors(ctx context.Context, tx pgx.Tx, ledgerID int64) (map[string][]*ledgerd.Monitor, map[string]int64, error) {
	// FOR UPDATE: a DELETE waits for the step, so a monitor's trigger is
	// never written after its deletion commits.
	rows, err := tx.Query(ctx, `SELECT `+monitorCols+`, start_seq FROM monitors WHERE ledger_id = $1 ORDER BY id FOR UPDATE`, ledgerID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	byAccount := map[string][]*ledgerd.Monitor{}
	starts := map[string]int64{}
	for rows.Next() {
		m := &ledgerd.Monitor{}
		var start int64
		if err := rows.Scan(&m.ID, &m.LedgerID, &m.Account, &m.Condition.Field, &m.Condition.Operator, &m.Condition.Value,
			&m.Email, &m.Description, &m.Triggers, &m.LastTriggeredAt, &m.CreatedAt, &start); err != nil {
			return nil, nil, err
		}
		m.CreatedAt = m.CreatedAt.UTC()
		if m.LastTriggeredAt != nil {
			u := m.LastTriggeredAt.UTC()
			m.LastTriggeredAt = &u
		}
		byAccount[m.Account] = append(byAccount[m.Account], m)
		starts[m.ID] = start
	}
	return byAccount, starts, rows.Err()
}

// evaluateSQL reads, for each monitored account, its balances before the
// range (its newest entry at or before $3) and after each transaction in
// (from, to] that touched it (the last entry of the transaction for that
// account). Pending totals are stored NULL for 0.
const evaluateSQL = `WITH a AS (SELECT unnest($2::text[]) AS id)
SELECT a.id, p.sequence, NULL::uuid, NULL::timestamptz, coalesce(p.posted_after, 0), coalesce(p.pd, 0), coalesce(p.pc, 0)
FROM a LEFT JOIN LATERAL (SELECT e.sequence, e.posted_after, e.pending_debits_after AS pd, e.pending_credits_after AS pc
	FROM entries e WHERE e.ledger_id = $1 AND e.account_id = a.id AND e.sequence <= $3
	ORDER BY e.sequence DESC, e.posting_index DESC LIMIT 1) p ON true
UNION ALL
SELECT * FROM (SELECT DISTINCT ON (e.account_id, e.sequence) e.account_id, e.sequence, e.transaction_id, e.created_at,
	e.posted_after, coalesce(e.pending_debits_after, 0), coalesce(e.pending_credits_after, 0)
	FROM entries e WHERE e.ledger_id = $1 AND e.account_id = ANY ($2::text[]) AND e.sequence > $3 AND e.sequence <= $4
	ORDER BY e.account_id, e.sequence, e.posting_index DESC) r`

// evaluate finds the crossings of the range (from, to], in log order.
func evaluate(ctx context.Context, tx pgx.Tx, ledgerID, from, to int64, mons map[string][]*ledgerd.Monitor,
	starts map[string]int64) ([]ledgerd.MonitorTrigger, error) {
	accounts := make([]string, 0, len(mons))
	for a := range mons {
		accounts = append(accounts, a)
	}
	rows, err := tx.Query(ctx, evaluateSQL, ledgerID, accounts, from, to)
	if err != nil {
		return nil, fmt.Errorf("evaluate monitors: %w", err)
	}
	before := map[string]ledgerd.Balance{}
	after := map[string][]entryState{}
	for rows.Next() {
		var acc string
		var seq *int64
		var txID pgtype.UUID
		var at *time.Time
		var b ledgerd.Balance
		if err := rows.Scan(&acc, &seq, &txID, &at, &b.Posted, &b.PendingDebits, &b.PendingCredits); err != nil {
			rows.Close()
			return nil, err
		}
		if !txID.Valid {
			before[acc] = b
			continue
		}
		after[acc] = append(after[acc], entryState{seq: *seq, tx: uuidString(txID), at: at.UTC(), balance: b})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluate monitors: %w", err)
	}
	var trig []ledgerd.MonitorTrigger
	for acc, states := range after {
		slices.SortFunc(states, func(x, y entryState) int { return int(x.seq - y.seq) })
		prev := before[acc]
		for _, s := range states {
			for _, m := range mons[acc] {
				if s.seq > starts[m.ID] && ledgerd.Crossed(m.Condition, prev, s.balance) {
					trig = append(trig, ledgerd.MonitorTrigger{Monitor: m, TransactionID: s.tx, Sequence: s.seq,
						CommittedAt: s.at, Balance: s.balance})
				}
			}
			prev = s.balance
		}
	}
	slices.SortFunc(trig, func(x, y ledgerd.MonitorTrigger) int {
		if x.Sequence != y.Sequence {
			return int(x.Sequence - y.Sequence)
		}
		if x.Monitor.ID < y.Monitor.ID {
			return -1
		}
		return 1
	})
	// The monitors' state after the range: whether each holds after its
	// account's last transaction in it.
	for acc, states := range after {
		last := states[len(states)-1]
		for _, m := range mons[acc] {
			if last.seq > starts[m.ID] {
				if _, err := tx.Exec(ctx, `UPDATE monitors SET evaluated_seq = $2, holds = $3 WHERE id = $1`,
					m.ID, last.seq, m.Condition.Holds(last.balance)); err != nil {
					return nil, err
				}
			}
		}
	}
	return trig, nil
}

// recordTriggers writes each trigger's event, e-mail and count. The
// monitor in each event is as it was before the trigger, with the counts
// of the triggers before it in this step.
func recordTriggers(ctx context.Context, tx pgx.Tx, ledgerID int64, trig []ledgerd.MonitorTrigger, render MonitorRender,
	res *MonitorStepResult) error {
	if len(trig) == 0 {
		return nil
	}
	ids := make([]string, len(trig))
	data := make([]string, len(trig))
	created := make([]time.Time, len(trig))
	now := time.Now().UTC()
	counts := map[string]int64{}
	for i := range trig {
		t := &trig[i]
		snap := *t.Monitor
		snap.Triggers += counts[snap.ID]
		if counts[snap.ID] > 0 {
			at := trig[i-1].CommittedAt
			for j := i - 1; j >= 0; j-- {
				if trig[j].Monitor.ID == snap.ID {
					at = trig[j].CommittedAt
					break
				}
			}
			snap.LastTriggeredAt = &at
		}
		counts[snap.ID]++
		t.Monitor = &snap
		ids[i] = ledgerd.NewEventID(now)[len(ledgerd.EventIDPrefix):]
		data[i] = string(wire.AppendMonitorTriggered(nil, t))
		created[i] = now
		if len(t.Monitor.Email) > 0 && render != nil {
			subject, body, err := render(t)
			if err != nil {
				return fmt.Errorf("render e-mail of monitor %s: %w", t.Monitor.ID, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO emails (ledger_id, monitor_id, event_id, recipients, subject, body)
				VALUES ($1, $2, $3, $4, $5, $6)`, ledgerID, t.Monitor.ID, ids[i], t.Monitor.Email, subject, body); err != nil {
				return err
			}
			res.Emails++
		}
		if _, err := tx.Exec(ctx, `UPDATE monitors SET triggers = triggers + 1, last_triggered_at = $2 WHERE id = $1`,
			t.Monitor.ID, t.CommittedAt); err != nil {
			return err
		}
		res.Triggers++
	}
	// Last, so that the write path waits on the ordering lock only for
	// this statement and the commit.
	_, err := tx.Exec(ctx, `INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
		SELECT u.id, $1, (SELECT last_sequence FROM ledgers WHERE id = $1 FOR UPDATE), 'monitor.triggered', u.data::json, u.created
		FROM unnest($2::uuid[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS u(id, data, created, n) ORDER BY u.n`,
		ledgerID, ids, data, created)
	return err
}
