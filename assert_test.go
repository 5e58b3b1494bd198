package ledgerd

import (
	"errors"
	"testing"
	"time"
)

func TestCheckDecisions(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newBook := func() *Book {
		return book(map[string]*BookAccount{"a": {Asset: "USD"}, "b": {Asset: "USD"}, "e": {Asset: "EUR"}, "f": {Asset: "EUR"}})
	}
	// decided builds decisions of transactions at sequences 11, 12, … with
	// the given legs each.
	decided := func(legs ...[]Leg) *Decisions {
		d := &Decisions{}
		for i, ls := range legs {
			from := len(d.Legs)
			d.Legs = append(d.Legs, ls...)
			d.Transactions = append(d.Transactions, Decided{Tx: &Transaction{Sequence: 11 + int64(i), CreatedAt: at},
				LegsFrom: from, LegsTo: len(d.Legs)})
		}
		return d
	}
	transfer := []Leg{{Account: "a", Amount: -5}, {Account: "b", Amount: 5}}
	tests := []struct {
		name   string
		d      func() *Decisions
		lastAt time.Time
		ok     bool
	}{
		{name: "balanced transfers", d: func() *Decisions { return decided(transfer, transfer) }, lastAt: at, ok: true},
		{name: "two assets each balanced", d: func() *Decisions {
			return decided([]Leg{{Account: "a", Amount: -5}, {Account: "e", Amount: -7}, {Account: "b", Amount: 5}, {Account: "f", Amount: 7}})
		}, lastAt: at, ok: true},
		{name: "nothing accepted", d: func() *Decisions { return decided() }, lastAt: at.Add(time.Hour), ok: true},
		{name: "legs do not sum to zero", d: func() *Decisions {
			return decided([]Leg{{Account: "a", Amount: -5}, {Account: "b", Amount: 6}})
		}, lastAt: at},
		{name: "sums to zero across assets only", d: func() *Decisions {
			return decided([]Leg{{Account: "a", Amount: -5}, {Account: "f", Amount: 5}})
		}, lastAt: at},
		{name: "sequence gap", d: func() *Decisions {
			d := decided(transfer, transfer)
			d.Transactions[1].Tx.Sequence = 13
			return d
		}, lastAt: at},
		{name: "sequence does not continue the ledger", d: func() *Decisions {
			d := decided(transfer)
			d.Transactions[0].Tx.Sequence = 10
			return d
		}, lastAt: at},
		{name: "created_at before the ledger's last", d: func() *Decisions { return decided(transfer) }, lastAt: at.Add(time.Microsecond)},
		{name: "created_at decreases within the batch", d: func() *Decisions {
			d := decided(transfer, transfer)
			d.Transactions[1].Tx.CreatedAt = at.Add(-time.Second)
			return d
		}, lastAt: at},
		{name: "leg of an account not in the book", d: func() *Decisions {
			return decided([]Leg{{Account: "a", Amount: -5}, {Account: "zz", Amount: 5}})
		}, lastAt: at},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckDecisions(tt.d(), newBook(), 10, tt.lastAt)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvariant)) {
				t.Fatalf("CheckDecisions: %v", err)
			}
		})
	}
}

// TestDecideKeepsInvariants runs Decide over mixed batches (transfers,
// holds, captures, voids, reversals, atomic units that fail) and checks
// its decisions with CheckDecisions.
func TestDecideKeepsInvariants(t *testing.T) {
	t.Parallel()
	const holdID, postedID = "00000000-0000-7000-8000-0000000000aa", "00000000-0000-7000-8000-0000000000bb"
	s := newState()
	capture := action(ActionPost, holdID)
	capture.Action.Amounts = []int64{10}
	units := []*WriteUnit{single(transfer("alice", "bob", 10)), single(capture), single(action(ActionReverse, postedID)),
		{Atomic: true, Items: []*WriteItem{transfer("alice", "bob", 1), transfer("alice", "bob", 1000)}},
		single(transfer("world", "alice", 3))}
	before := s.Sequence
	d := Decide(s, units, 6, nil)
	if len(d.Transactions) != 4 {
		t.Fatalf("%d transactions accepted, want 4", len(d.Transactions))
	}
	if err := CheckDecisions(d, s.Book, before, decideAt); err != nil {
		t.Fatal(err)
	}
}
