package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/wire"
)

type eventsEnv struct {
	t    *testing.T
	ctx  context.Context
	db   *postgres.DB
	lid  int64
	name string
	seq  int64
	r    *rand.Rand
}

func newEventsEnv(t *testing.T) *eventsEnv {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewDatabase(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	l, err := db.CreateLedger(ctx, "ev")
	if err != nil {
		t.Fatal(err)
	}
	return &eventsEnv{t: t, ctx: ctx, db: db, lid: l.ID, name: "ev", r: rand.New(rand.NewPCG(7, 8))}
}

// rawTx appends a transaction row of the given shape to the log and moves
// the ledger's last_sequence, as the write path does under the lock. It
// returns the id. The write path's own rules are not what is tested here:
// these rows stand for every kind the log holds.
func (e *eventsEnv) rawTx(status string, pendingID, resolvedBy, reverses, reversedBy string) string {
	e.t.Helper()
	e.seq++
	id := postgres.TransactionIDAt(time.Now(), e.r.Uint64)
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	_, err := e.db.Pool.Exec(e.ctx, `INSERT INTO transactions (id, ledger_id, sequence, status, postings, metadata, created_at,
			pending_id, resolved_by, reverses, reversed_by)
		VALUES ($1, $2, $3, $4, '[{"source":"a","destination":"b","amount":1,"asset":"USD"}]', '{"k":"v"}', clock_timestamp(),
			$5::uuid, $6::uuid, $7::uuid, $8::uuid)`,
		id, e.lid, e.seq, status, nullable(pendingID), nullable(resolvedBy), nullable(reverses), nullable(reversedBy))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE ledgers SET last_sequence = $2 WHERE id = $1`, e.lid, e.seq); err != nil {
		e.t.Fatal(err)
	}
	return uuid.UUID(id.Bytes).String()
}

func (e *eventsEnv) accounts(ids ...string) []*ledgerd.Account {
	e.t.Helper()
	var nas []ledgerd.NewAccount
	for _, id := range ids {
		nas = append(nas, ledgerd.NewAccount{ID: id, Asset: "USD", Metadata: map[string]string{"owner": id, "<&>": "\"é\u2028"}})
	}
	res, err := e.db.CreateAccounts(e.ctx, e.lid, nas)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*ledgerd.Account
	for _, r := range res {
		out = append(out, r.Account)
	}
	return out
}

// all reads every event by pages of limit, following Next.
func (e *eventsEnv) all(limit int, types ...ledgerd.EventType) []ledgerd.Event {
	e.t.Helper()
	var out []ledgerd.Event
	var after ledgerd.EventPosition
	for i := 0; ; i++ {
		if i > 10_000 {
			e.t.Fatal("paging does not end")
		}
		p, err := e.db.ReadEvents(e.ctx, e.lid, e.name, ledgerd.EventQuery{After: after, Types: types, Limit: limit})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(p.Events) > limit {
			e.t.Fatalf("page of %d events, limit %d", len(p.Events), limit)
		}
		for _, ev := range p.Events {
			if !after.Less(ev.Position) {
				e.t.Fatalf("event %s at %v is not after %v", ev.ID, ev.Position, after)
			}
			after = ev.Position
		}
		out = append(out, p.Events...)
		if !p.More {
			return out
		}
		if p.Next.Less(after) {
			e.t.Fatalf("next %v goes back behind %v", p.Next, after)
		}
		// Next must be an event id the API can resolve back to Next.
		got, ok, err := e.db.EventPosition(e.ctx, e.lid, p.NextID)
		if err != nil || !ok || got != p.Next {
			e.t.Fatalf("next id %q resolves to %v %v %v; want %v", p.NextID, got, ok, err, p.Next)
		}
		after = p.Next
	}
}

func ids(evs []ledgerd.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Type)+" "+ev.ID)
	}
	return out
}

// TestReadEvents builds a log with every kind of transaction and
// account.created events between them, and reads it back whole and in
// pages of every size, with and without type filters, the filters also
// with a scan budget of a few rows: always the same events in the same
// order, each rendered as it was committed.
func TestReadEvents(t *testing.T) {
	e := newEventsEnv(t)
	accs := e.accounts("a", "b") // at (0, ·)
	posted := e.rawTx("posted", "", "", "", "")
	hold := e.rawTx("captured", "", "", "", "") // a captured hold (wt-core's status); resolved_by set below
	capture := e.rawTx("posted", hold, "", "", "")
	voidedHold := e.rawTx("voided", "", "", "", "")
	void := e.rawTx("voided", voidedHold, "", "", "")
	accs = append(accs, e.accounts("c")...) // at (5, ·)
	expiredHold := e.rawTx("expired", "", "", "", "")
	expiry := e.rawTx("expired", expiredHold, "", "", "")
	reversal := e.rawTx("posted", "", "", posted, "")
	openHold := e.rawTx("pending", "", "", "", "")
	oldCapturedHold := e.rawTx("posted", "", "", "", "") // a captured hold as main marks it
	oldCapture := e.rawTx("posted", oldCapturedHold, "", "", "")
	for _, u := range [][2]string{{hold, capture}, {voidedHold, void}, {expiredHold, expiry}, {oldCapturedHold, oldCapture}} {
		if _, err := e.db.Pool.Exec(e.ctx, `UPDATE transactions SET resolved_by = $2 WHERE id = $1`, u[0], u[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE transactions SET reversed_by = $2 WHERE id = $1`, posted, reversal); err != nil {
		t.Fatal(err)
	}
	accs = append(accs, e.accounts("d", "e")...) // at (12, ·)

	want := []string{
		"account.created", "account.created",
		"transaction.posted " + posted, "transaction.pending " + hold, "transaction.captured " + capture,
		"transaction.pending " + voidedHold, "transaction.voided " + void,
		"account.created",
		"transaction.pending " + expiredHold, "transaction.expired " + expiry, "transaction.reversed " + reversal,
		"transaction.pending " + openHold, "transaction.pending " + oldCapturedHold, "transaction.captured " + oldCapture,
		"account.created", "account.created",
	}
	full := e.all(1000)
	if len(full) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(full), len(want), ids(full))
	}
	accIdx := 0
	for i, ev := range full {
		if ev.Type == ledgerd.EventAccountCreated {
			a := accs[accIdx]
			accIdx++
			if string(ev.Type) != want[i] || string(ev.Data) != string(wire.AppendAccount(nil, a)) || !ev.CreatedAt.Equal(a.CreatedAt) {
				t.Fatalf("event %d: %s %s; want the creation of %+v", i, ev.Type, ev.Data, a)
			}
			if ev.Ledger != "ev" || ev.Sequence != 0 || ev.Position.Ordinal < 1 {
				t.Fatalf("event %d: %+v", i, ev)
			}
			continue
		}
		if string(ev.Type)+" "+ev.ID[len("evt_"):] != want[i] {
			t.Fatalf("event %d is %s %s; want %s", i, ev.Type, ev.ID, want[i])
		}
		if ev.Position != (ledgerd.EventPosition{Sequence: ev.Sequence}) {
			t.Fatalf("event %d: position %v, sequence %d", i, ev.Position, ev.Sequence)
		}
		// As committed: the hold pending without resolved_by, the
		// reversed transaction without reversed_by.
		tx, err := e.db.Transaction(e.ctx, e.lid, ev.ID[len("evt_"):])
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) != string(wire.AppendTransaction(nil, wire.AsCommitted(tx))) {
			t.Fatalf("event %d data %s", i, ev.Data)
		}
	}
	for _, s := range []string{`"status":"pending"`, `"sequence":2`} {
		if !contains(full[3].Data, s) || contains(full[3].Data, "resolved_by") {
			t.Fatalf("a captured hold's event: %s", full[3].Data)
		}
	}
	if contains(full[2].Data, "reversed_by") {
		t.Fatalf("a reversed transaction's event: %s", full[2].Data)
	}

	check := func(name string, got []ledgerd.Event, types ...ledgerd.EventType) {
		t.Helper()
		var exp []ledgerd.Event
		for _, ev := range full {
			if len(types) == 0 || slices.Contains(types, ev.Type) {
				exp = append(exp, ev)
			}
		}
		if fmt.Sprint(ids(got)) != fmt.Sprint(ids(exp)) {
			t.Fatalf("%s: %v\nwant %v", name, ids(got), ids(exp))
		}
	}
	for _, limit := range []int{1, 2, 3, 5, 7} {
		check(fmt.Sprint("limit ", limit), e.all(limit))
	}
	filters := [][]ledgerd.EventType{{ledgerd.EventAccountCreated}, {ledgerd.EventAccountFrozen}}
	for _, typ := range ledgerd.EventTypes {
		filters = append(filters, []ledgerd.EventType{typ})
	}
	filters = append(filters, []ledgerd.EventType{ledgerd.EventTransactionCaptured, ledgerd.EventAccountCreated, ledgerd.EventTransactionCaptured},
		ledgerd.EventTypes)
	for _, budget := range []int{10_000, 1, 2, 3} {
		restore := postgres.SetEventScanBudget(budget)
		for _, f := range filters {
			for _, limit := range []int{1, 2, 100} {
				check(fmt.Sprintf("budget %d, limit %d, types %v", budget, limit, f), e.all(limit, f...), f...)
			}
		}
		restore()
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestReadEventsBoundedByHead: a transaction row beyond the ledger's
// last_sequence (one whose commit is still in flight, as a reader can
// never see it but here forced) is not read, nor is anything after it.
func TestReadEventsBoundedByHead(t *testing.T) {
	e := newEventsEnv(t)
	e.rawTx("posted", "", "", "", "")
	e.rawTx("posted", "", "", "", "")
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE ledgers SET last_sequence = 1 WHERE id = $1`, e.lid); err != nil {
		t.Fatal(err)
	}
	p, err := e.db.ReadEvents(e.ctx, e.lid, e.name, ledgerd.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].Sequence != 1 || p.More {
		t.Fatalf("%+v", p)
	}
}

// TestEventPosition: both kinds of ids resolve to their positions in
// their own ledger only.
func TestEventPosition(t *testing.T) {
	e := newEventsEnv(t)
	e.accounts("a")
	txID := e.rawTx("posted", "", "", "", "")
	other, err := e.db.CreateLedger(e.ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.db.ReadEvents(e.ctx, e.lid, e.name, ledgerd.EventQuery{Limit: 10})
	if err != nil || len(p.Events) != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, ev := range p.Events {
		got, ok, err := e.db.EventPosition(e.ctx, e.lid, ev.ID)
		if err != nil || !ok || got != ev.Position {
			t.Fatalf("%s: %v %v %v; want %v", ev.ID, got, ok, err, ev.Position)
		}
		if _, ok, err := e.db.EventPosition(e.ctx, other.ID, ev.ID); err != nil || ok {
			t.Fatalf("%s found in another ledger (%v)", ev.ID, err)
		}
	}
	if p.Events[1].ID != ledgerd.TransactionEventID(txID) {
		t.Fatalf("transaction event id %s", p.Events[1].ID)
	}
	for _, id := range []string{"", "evt_", txID, "evt_" + uuid.NewString(), "evt_" + txID + "x", "evt_" + "ZZ" + txID[2:]} {
		if _, ok, err := e.db.EventPosition(e.ctx, e.lid, id); err != nil || ok {
			t.Fatalf("%q: ok=%v err=%v", id, ok, err)
		}
	}
}

// TestAccountCreatedOnce: an account creation replayed by its key, and a
// duplicate in a batch or alone, write no second event.
func TestAccountCreatedOnce(t *testing.T) {
	e := newEventsEnv(t)
	zero := int64(0)
	na := &ledgerd.NewAccount{ID: "a", Asset: "USD", MinBalance: &zero}
	idem := &ledgerd.Idempotency{Key: "k", Hash: []byte("h")}
	a, replayed, err := e.db.CreateAccount(e.ctx, e.lid, na, idem)
	if err != nil || replayed {
		t.Fatal(err, replayed)
	}
	if _, replayed, err := e.db.CreateAccount(e.ctx, e.lid, na, idem); err != nil || !replayed {
		t.Fatal(err, replayed)
	}
	var le *ledgerd.Error
	if _, _, err := e.db.CreateAccount(e.ctx, e.lid, na, nil); !errors.As(err, &le) || le.Code != ledgerd.CodeDuplicateAccount {
		t.Fatal(err)
	}
	res, err := e.db.CreateAccounts(e.ctx, e.lid, []ledgerd.NewAccount{*na, {ID: "b", Asset: "EUR"}, {ID: "b", Asset: "USD"}})
	if err != nil || res[0].Err == nil || res[1].Account == nil || res[2].Err == nil {
		t.Fatalf("%+v %v", res, err)
	}
	p, err := e.db.ReadEvents(e.ctx, e.lid, e.name, ledgerd.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || string(p.Events[0].Data) != string(wire.AppendAccount(nil, a)) ||
		string(p.Events[1].Data) != string(wire.AppendAccount(nil, res[1].Account)) {
		t.Fatalf("%d events: %v", len(p.Events), ids(p.Events))
	}
}

// TestMigrateOutOfOrder: a database that got a later migration before an
// earlier one (branches merged in another order) still migrates.
func TestMigrateOutOfOrder(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewEmptyDatabase(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateWithout(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = 3 AND is_applied`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("migration 3 applied %d times (%v)", n, err)
	}
}
