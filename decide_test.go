package ledgerd

import (
	"testing"
	"time"
)

var decideAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newState is a ledger at sequence 10 with funded alice, empty bob, a
// stored outcome for key "k-done" (transaction) and "k-rejected"
// (insufficient funds), reference "ref-taken", and a pending hold "hold".
func newState() *State {
	n := byte(0)
	hold := &Transaction{ID: "00000000-0000-7000-8000-0000000000aa", Sequence: 9, Status: StatusPending,
		Postings: []Posting{{Source: "alice", Destination: "bob", Amount: 30, Asset: "USD"}}}
	posted := &Transaction{ID: "00000000-0000-7000-8000-0000000000bb", Sequence: 8, Status: StatusPosted,
		Postings: []Posting{{Source: "alice", Destination: "bob", Amount: 5, Asset: "USD"}}}
	done := &Transaction{ID: "00000000-0000-7000-8000-0000000000cc", Sequence: 7, Status: StatusPosted}
	return &State{
		Book: book(map[string]*BookAccount{
			"world": {Asset: "USD"},
			"alice": {Asset: "USD", MinBalance: i64(0), Balance: Balance{Posted: 100, PendingDebits: 30}},
			"bob":   {Asset: "USD", MinBalance: i64(0), Balance: Balance{Posted: 5, PendingCredits: 30}},
		}),
		Keys: map[string]*KeyOutcome{
			"k-done":     {Hash: []byte("h-done"), Tx: done},
			"k-rejected": {Hash: []byte("h-rej"), Err: &Error{Code: CodeInsufficientFunds, Detail: "stored"}},
			"k-account":  {Hash: nil},
		},
		References: map[string]string{"ref-taken": done.ID},
		Targets:    map[string]*Target{hold.ID: {Tx: hold}, posted.ID: {Tx: posted}},
		Sequence:   10,
		At:         decideAt,
		NewID:      func(time.Time) [16]byte { n++; return [16]byte{15: n} },
	}
}

func transfer(src, dst string, amount int64) *WriteItem {
	return &WriteItem{Request: &TransactionRequest{Postings: []Posting{{Source: src, Destination: dst, Amount: amount, Asset: "USD"}}}}
}

func keyed(it *WriteItem, key, hash string) *WriteItem {
	it.IdempotencyKey, it.RequestHash = key, []byte(hash)
	return it
}

func action(kind ActionKind, target string) *WriteItem {
	return &WriteItem{Request: &TransactionRequest{}, Action: &Action{Kind: kind, Target: target}}
}

func single(it *WriteItem) *WriteUnit { return &WriteUnit{Items: []*WriteItem{it}} }

func errCode(it *WriteItem) Code {
	if it.Err == nil {
		return ""
	}
	return it.Err.Code
}

func TestDecide(t *testing.T) {
	t.Parallel()
	const holdID, postedID = "00000000-0000-7000-8000-0000000000aa", "00000000-0000-7000-8000-0000000000bb"
	tests := []struct {
		name  string
		units func() []*WriteUnit
		check func(t *testing.T, s *State, d *Decisions, units []*WriteUnit)
	}{
		{name: "accepted transfer gets the next sequence, an id, legs and a stored key",
			units: func() []*WriteUnit { return []*WriteUnit{single(keyed(transfer("alice", "bob", 10), "k1", "h1"))} },
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it := u[0].Items[0]
				if it.Err != nil || it.Result == nil || it.Result.Sequence != 11 || it.Result.Status != StatusPosted {
					t.Fatalf("outcome %+v %v", it.Result, it.Err)
				}
				if it.Result.ID != "00000000-0000-0000-0000-000000000001" || !it.Result.CreatedAt.Equal(decideAt) {
					t.Fatalf("id %s at %s", it.Result.ID, it.Result.CreatedAt)
				}
				if len(d.Transactions) != 1 || len(d.LegsOf(&d.Transactions[0])) != 2 || s.Sequence != 11 {
					t.Fatalf("decisions %+v, sequence %d", d.Transactions, s.Sequence)
				}
				if len(d.Keys) != 1 || d.Keys[0].Key != "k1" || d.Keys[0].Tx != it.Result || d.Keys[0].ID != d.Transactions[0].ID {
					t.Fatalf("keys %+v", d.Keys)
				}
				if s.Keys["k1"].Tx != it.Result {
					t.Fatal("a later item of the batch would not see the key")
				}
			}},
		{name: "idempotency replay of a stored transaction writes nothing",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(keyed(transfer("alice", "bob", 10), "k-done", "h-done"))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it := u[0].Items[0]
				if !it.Replayed || it.Result != s.Keys["k-done"].Tx || it.Err != nil {
					t.Fatalf("replay %+v %v %v", it.Result, it.Replayed, it.Err)
				}
				if len(d.Transactions) != 0 || len(d.Keys) != 0 || s.Sequence != 10 {
					t.Fatalf("a replay wrote %+v", d)
				}
			}},
		{name: "idempotency replay of a stored rejection",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(keyed(transfer("alice", "bob", 1), "k-rejected", "h-rej"))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it := u[0].Items[0]
				if !it.Replayed || errCode(it) != CodeInsufficientFunds || it.Err.Detail != "stored" || len(d.Keys) != 0 {
					t.Fatalf("replay %v %v", it.Replayed, it.Err)
				}
			}},
		{name: "idempotency key reused with another request",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(keyed(transfer("alice", "bob", 1), "k-done", "other"))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if it := u[0].Items[0]; errCode(it) != CodeIdempotencyKeyReused || it.Replayed || len(d.Keys) != 0 {
					t.Fatalf("%v %v", it.Err, d.Keys)
				}
			}},
		{name: "idempotency key holding an account creation is reused",
			units: func() []*WriteUnit { return []*WriteUnit{single(keyed(transfer("alice", "bob", 1), "k-account", "h"))} },
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[0].Items[0]) != CodeIdempotencyKeyReused {
					t.Fatal(u[0].Items[0].Err)
				}
			}},
		{name: "same key twice in a batch replays the first outcome",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(keyed(transfer("alice", "bob", 10), "k1", "h1")), single(keyed(transfer("alice", "bob", 10), "k1", "h1"))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				a, b := u[0].Items[0], u[1].Items[0]
				if b.Result != a.Result || !b.Replayed || len(d.Transactions) != 1 || s.Book.Get("bob").Balance.Posted != 15 {
					t.Fatalf("second %+v replayed %v, %d transactions", b.Result, b.Replayed, len(d.Transactions))
				}
			}},
		{name: "stored rejection is kept for replay",
			units: func() []*WriteUnit { return []*WriteUnit{single(keyed(transfer("alice", "bob", 1000), "k1", "h1"))} },
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[0].Items[0]) != CodeInsufficientFunds || len(d.Keys) != 1 || d.Keys[0].Err == nil || d.Keys[0].Tx != nil {
					t.Fatalf("%v %+v", u[0].Items[0].Err, d.Keys)
				}
				if len(d.Transactions) != 0 || s.Sequence != 10 || s.Keys["k1"].Err == nil {
					t.Fatal("a rejection moved the ledger")
				}
			}},
		{name: "validation failure is not stored",
			units: func() []*WriteUnit {
				it := keyed(action(ActionPost, holdID), "k1", "h1")
				it.Action.Amounts = []int64{1, 2}
				return []*WriteUnit{single(it)}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[0].Items[0]) != CodeValidationFailed || len(d.Keys) != 0 || s.Keys["k1"] != nil {
					t.Fatalf("%v %+v", u[0].Items[0].Err, d.Keys)
				}
			}},
		{name: "duplicate reference names the holder",
			units: func() []*WriteUnit {
				it := keyed(transfer("alice", "bob", 1), "k1", "h1")
				it.Request.Reference = "ref-taken"
				return []*WriteUnit{single(it)}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it := u[0].Items[0]
				if errCode(it) != CodeDuplicateReference || it.Err.TransactionID != s.References["ref-taken"] || len(d.Keys) != 1 {
					t.Fatalf("%+v %+v", it.Err, d.Keys)
				}
			}},
		{name: "a reference taken earlier in the batch",
			units: func() []*WriteUnit {
				a, b := transfer("alice", "bob", 1), transfer("alice", "bob", 1)
				a.Request.Reference, b.Request.Reference = "r", "r"
				return []*WriteUnit{single(a), single(b)}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[1].Items[0]) != CodeDuplicateReference || u[1].Items[0].Err.TransactionID != u[0].Items[0].Result.ID {
					t.Fatal(u[1].Items[0].Err)
				}
			}},
		{name: "capture resolves the hold",
			units: func() []*WriteUnit { return []*WriteUnit{single(action(ActionPost, holdID))} },
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it, hold := u[0].Items[0], s.Targets[holdID]
				if it.Err != nil || it.Result.PendingID != holdID || it.Result.Status != StatusPosted {
					t.Fatalf("%+v %v", it.Result, it.Err)
				}
				if !hold.Changed || hold.Tx.Status != StatusCaptured || hold.Tx.ResolvedBy != it.Result.ID {
					t.Fatalf("hold %+v", hold.Tx)
				}
				if b := s.Book.Get("bob").Balance; b.Posted != 35 || b.PendingCredits != 0 {
					t.Fatal(b)
				}
			}},
		{name: "void of a resolved hold is invalid_state",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(action(ActionPost, holdID)), single(action(ActionVoid, holdID))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[1].Items[0]) != CodeInvalidState || s.Targets[holdID].Tx.Status != StatusCaptured {
					t.Fatal(u[1].Items[0].Err)
				}
			}},
		{name: "reversal links both ways",
			units: func() []*WriteUnit { return []*WriteUnit{single(action(ActionReverse, postedID))} },
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				it := u[0].Items[0]
				if it.Err != nil || it.Result.Reverses != postedID || s.Targets[postedID].Tx.ReversedBy != it.Result.ID {
					t.Fatalf("%+v %v", it.Result, it.Err)
				}
			}},
		{name: "action on a missing target is not_found, expiry of one is dropped",
			units: func() []*WriteUnit {
				return []*WriteUnit{single(action(ActionVoid, "nope")), single(action(ActionExpire, "nope"))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[0].Items[0]) != CodeNotFound || u[1].Items[0].Err != nil || u[1].Items[0].Result != nil {
					t.Fatal(u[0].Items[0].Err, u[1].Items[0].Err)
				}
			}},
		{name: "atomic unit that fails leaves no trace",
			units: func() []*WriteUnit {
				a := keyed(transfer("alice", "bob", 50), "k1", "h1")
				a.Request.Reference = "r1"
				c := action(ActionPost, holdID)
				return []*WriteUnit{{Atomic: true, Items: []*WriteItem{a, c, transfer("alice", "bob", 1000)}},
					single(transfer("alice", "bob", 60))}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if u[0].FailedIndex != 2 || errCode(u[0].Items[2]) != CodeInsufficientFunds {
					t.Fatalf("failed %d: %v", u[0].FailedIndex, u[0].Items[2].Err)
				}
				for _, it := range u[0].Items[:2] {
					if it.Result != nil || it.Err != nil {
						t.Fatalf("undone item kept %+v %v", it.Result, it.Err)
					}
				}
				if s.Keys["k1"] != nil || s.References["r1"] != "" || s.Targets[holdID].Tx.Status != StatusPending {
					t.Fatal("the unit's key, reference or capture survived")
				}
				// The next unit sees the balances as before the atomic one
				// and takes its sequence number.
				if it := u[1].Items[0]; it.Err != nil || it.Result.Sequence != 11 || len(d.Transactions) != 1 || len(d.Keys) != 0 {
					t.Fatalf("next unit %+v %v, %d transactions", it.Result, it.Err, len(d.Transactions))
				}
				if len(d.LegsOf(&d.Transactions[0])) != 2 || d.Legs[0].PostedAfter != 40 {
					t.Fatalf("legs %+v", d.Legs)
				}
			}},
		{name: "non-atomic batch keeps the items that pass",
			units: func() []*WriteUnit {
				return []*WriteUnit{{Items: []*WriteItem{transfer("alice", "bob", 1000), transfer("alice", "bob", 1)}}}
			},
			check: func(t *testing.T, s *State, d *Decisions, u []*WriteUnit) {
				if errCode(u[0].Items[0]) != CodeInsufficientFunds || u[0].Items[1].Result == nil || len(d.Transactions) != 1 {
					t.Fatal(u[0].Items[0].Err, u[0].Items[1].Err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, units := newState(), tt.units()
			n := 0
			for _, u := range units {
				n += len(u.Items)
			}
			d := Decide(s, units, n, nil)
			tt.check(t, s, d, units)
		})
	}
}

func TestFormatID(t *testing.T) {
	t.Parallel()
	id := [16]byte{0x01, 0x8f, 0x2a, 0x3b, 0x4c, 0x5d, 0x7e, 0x6f, 0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7}
	if got := FormatID(id); got != "018f2a3b-4c5d-7e6f-8091-a2b3c4d5e6f7" {
		t.Fatal(got)
	}
}
