package postgres

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd"
)

func pos(s, o int64) ledgerd.EventPosition { return ledgerd.EventPosition{Sequence: s, Ordinal: o} }

func evAt(s, o int64) ledgerd.Event {
	return ledgerd.Event{ID: fmt.Sprintf("evt_%d_%d", s, o), Position: pos(s, o)}
}

func positions(evs []ledgerd.Event) string {
	out := ""
	for _, e := range evs {
		out += fmt.Sprintf("(%d,%d)", e.Position.Sequence, e.Position.Ordinal)
	}
	return out
}

// TestPageOf: the merge of both sides is in position order, cut where the
// scan stopped, and says where to read on.
func TestPageOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cands  []ledgerd.Event
		after  ledgerd.EventPosition
		limit  int
		reach  scanReach
		want   string
		more   bool
		next   ledgerd.EventPosition
		nextID string
	}{
		{name: "merged in order, at the head",
			cands: []ledgerd.Event{evAt(2, 0), evAt(0, 1), evAt(1, 0), evAt(1, 5), evAt(0, 2)},
			limit: 10, reach: scanReach{hi: 2, head: 2, hiTx: "t2"},
			want: "(0,1)(0,2)(1,0)(1,5)(2,0)", next: pos(2, 0), nextID: "evt_2_0"},
		{name: "full page",
			cands: []ledgerd.Event{evAt(1, 0), evAt(2, 0), evAt(3, 0)},
			limit: 2, reach: scanReach{hi: 3, head: 9, hiTx: "t3"},
			want: "(1,0)(2,0)", more: true, next: pos(2, 0), nextID: "evt_2_0"},
		{name: "transactions read to their budget: events rows after hi wait",
			cands: []ledgerd.Event{evAt(4, 1)},
			after: pos(0, 0), limit: 5, reach: scanReach{hi: 3, head: 9, hiTx: "t3"},
			want: "", more: true, next: pos(3, 0), nextID: "evt_t3"},
		{name: "events rows read to their budget: transactions after it wait",
			cands: []ledgerd.Event{evAt(1, 0), evAt(2, 0), evAt(0, 7)},
			after: pos(0, 3), limit: 5,
			reach: scanReach{hi: 2, head: 2, hiTx: "t2", evTruncated: true, evLast: pos(1, 9), evLastID: "e19"},
			want:  "(0,7)(1,0)", more: true, next: pos(1, 9), nextID: "e19"},
		{name: "nothing matched, at the head",
			after: pos(5, 2), limit: 5, reach: scanReach{hi: 5, head: 5, hiTx: "t5"},
			want: "", next: pos(5, 2)},
		{name: "nothing matched, budget spent",
			after: pos(5, 2), limit: 5, reach: scanReach{hi: 105, head: 500, hiTx: "t105"},
			want: "", more: true, next: pos(105, 0), nextID: "evt_t105"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pageOf(tc.cands, tc.after, tc.limit, tc.reach)
			if got := positions(p.Events); got != tc.want || p.More != tc.more || p.Next != tc.next || p.NextID != tc.nextID {
				t.Fatalf("got %s more=%v next=%v %q; want %s more=%v next=%v %q",
					got, p.More, p.Next, p.NextID, tc.want, tc.more, tc.next, tc.nextID)
			}
		})
	}
}
