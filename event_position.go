package ledgerd

// EventPosition is an event's place in its ledger's order of events, the
// order in which they commit (docs/api.md §Events):
//
//   - a transaction's event is at (its sequence, 0);
//   - any other event (account.created, …) is at (after_sequence,
//     ordinal): the ledger's last sequence when the change committed, read
//     under the ledger's ordering lock, and an ordinal ≥ 1 drawn after
//     taking that lock.
//
// Both parts grow in commit order because every change that has an event
// takes the lock first and keeps it until it commits; a reader that bounds
// what it reads by the ledger's last sequence in its snapshot therefore
// never sees a position appear behind one it has read.
type EventPosition struct {
	Sequence int64
	Ordinal  int64
}

// Less reports whether p comes before q.
func (p EventPosition) Less(q EventPosition) bool {
	return p.Sequence < q.Sequence || p.Sequence == q.Sequence && p.Ordinal < q.Ordinal
}

// EventQuery selects a page of a ledger's events.
type EventQuery struct {
	// After is exclusive; the zero position reads from the first event.
	After EventPosition
	// Types keeps only these types; empty keeps every type.
	Types []EventType
	// Limit is the most events returned (≥ 1).
	Limit int
}

// EventPage is what one read of a ledger's events returns.
type EventPage struct {
	// Events in order, at most the query's Limit.
	Events []Event
	// More is true when the read stopped before the end of what is
	// committed: the page is full, or a type filter skipped a long stretch
	// of other events and the read stopped at its budget. Read on from
	// Next, not from the last event (there may be none).
	More bool
	// Next is where to read on from, and NextID the id of the event at
	// that position (of any type: with a filter, possibly one the page
	// left out), to be passed back as after=. When More is false, Next is
	// the last event returned (NextID its id), or the query's After with
	// NextID "" when none was.
	Next   EventPosition
	NextID string
}
