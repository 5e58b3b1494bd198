package ledgerd

import (
	"encoding/hex"
	"time"
)

// The write path of a batch is: the storage adapter locks the ledger and
// loads what the batch touches into a State; Decide judges every item in
// request order, in memory, with no I/O; the adapter writes Decisions and
// commits; the batcher answers the callers. Everything a caller can be
// told about an item (replay, rejection, acceptance) is decided here, so
// it is tested without a database (decide_test.go).

// KeyOutcome is what a batch knows of an idempotency key: the outcome
// stored by an earlier request, or one decided earlier in this batch.
type KeyOutcome struct {
	// Hash is the request hash the outcome belongs to; nil when the key
	// holds another kind of outcome (an account creation), so that any
	// transaction with it is a different request.
	Hash []byte
	// Exactly one of Tx (accepted) and Err (stored rejection) is set,
	// unless Hash is nil.
	Tx  *Transaction
	Err *Error
}

// Target is an existing transaction an action of the batch refers to.
// Decide changes Tx in place (status, links) and sets Changed; the adapter
// writes the changed targets once, at the end.
type Target struct {
	Tx      *Transaction
	Changed bool
}

// State is what a batch loaded under the ledger's ordering lock. Decide
// updates it as items are accepted, so that later items of the batch see
// earlier ones (balances, keys, references, targets).
type State struct {
	Book *Book
	// Keys holds the stored outcomes of the batch's idempotency keys
	// (expired ones left out).
	Keys map[string]*KeyOutcome
	// References maps each of the batch's references already taken to
	// the transaction that holds it.
	References map[string]string
	// Targets holds the existing transactions the batch's actions name,
	// by id; an id that is not there does not exist in the ledger.
	Targets map[string]*Target
	// Sequence is the last sequence number assigned in the ledger.
	Sequence int64
	// At is the batch's time, the created_at of all its transactions.
	At time.Time
	// NewID returns a new transaction id (16 bytes, a UUID) for time at.
	NewID func(at time.Time) [16]byte
}

// Decisions is what Decide made of a batch: what to write, in order.
//
// After decide, before write: this is the place where the next stages
// hook in — the events recorded per accepted transaction, the audit
// entries, the fraud and monitor inputs are all derived from Decisions
// (and written in the same database transaction) before the adapter
// writes them. See the AfterDecide hook of the storage adapter.
type Decisions struct {
	// Transactions are the accepted transactions, in sequence order.
	Transactions []Decided
	// Legs are the entries of all accepted transactions; each Decided
	// names its range.
	Legs []Leg
	// Keys are the idempotency outcomes to store for replay: accepted
	// transactions, and rejections whose code is Stored.
	Keys []KeyRecord
}

// Decided is one accepted transaction.
type Decided struct {
	ID [16]byte
	Tx *Transaction
	// LegsFrom and LegsTo delimit the transaction's legs in Decisions.Legs.
	LegsFrom, LegsTo int
}

// KeyRecord is an idempotency outcome to store: the transaction (Tx, with
// its id ID) or the rejection Err.
type KeyRecord struct {
	Key  string
	Hash []byte
	ID   [16]byte
	Tx   *Transaction
	Err  *Error
}

// Reset empties d for reuse, keeping its buffers and dropping what they
// referenced.
func (d *Decisions) Reset() {
	clear(d.Transactions[:cap(d.Transactions)])
	clear(d.Legs[:cap(d.Legs)])
	clear(d.Keys[:cap(d.Keys)])
	d.Transactions, d.Legs, d.Keys = d.Transactions[:0], d.Legs[:0], d.Keys[:0]
}

// LegsOf returns the legs of an accepted transaction.
func (d *Decisions) LegsOf(t *Decided) []Leg { return d.Legs[t.LegsFrom:t.LegsTo] }

// Decide judges the units in request order against state and returns
// what to write. Each item's outcome (Result, Replayed, Err) is set on the
// item; an atomic unit that fails leaves no trace in the decisions, the
// state, or its other items, and its FailedIndex names the item that
// failed. It performs no I/O. The decisions go into d's buffers (after
// Reset), or new ones when d is nil; nItems sizes new buffers.
func Decide(s *State, units []*WriteUnit, nItems int, d *Decisions) *Decisions {
	if d == nil {
		d = &Decisions{Transactions: make([]Decided, 0, nItems), Legs: make([]Leg, 0, 2*nItems)}
	}
	for _, u := range units {
		s.decideUnit(d, u)
	}
	return d
}

// undo is what an atomic unit must restore when one of its items fails.
type undo struct {
	snap               Snapshot
	txs, legs, keyRecs int
	seq                int64
	keys, refs         []string
	targets            map[string]Transaction
}

func (s *State) beginAtomic(d *Decisions, u *WriteUnit) *undo {
	ids := map[string]struct{}{}
	saved := &undo{txs: len(d.Transactions), legs: len(d.Legs), keyRecs: len(d.Keys), seq: s.Sequence,
		targets: map[string]Transaction{}}
	for _, it := range u.Items {
		for _, p := range it.Request.Postings {
			ids[p.Source], ids[p.Destination] = struct{}{}, struct{}{}
		}
		if it.Action != nil {
			if t := s.Targets[it.Action.Target]; t != nil {
				saved.targets[it.Action.Target] = *t.Tx
				for _, p := range t.Tx.Postings {
					ids[p.Source], ids[p.Destination] = struct{}{}, struct{}{}
				}
			}
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	saved.snap = s.Book.Snapshot(list)
	return saved
}

// decideUnit decides one caller's unit.
func (s *State) decideUnit(d *Decisions, u *WriteUnit) {
	var saved *undo
	if u.Atomic {
		saved = s.beginAtomic(d, u)
	}
	failed := -1
	for i, it := range u.Items {
		key := s.decideItem(d, it)
		if saved == nil {
			continue
		}
		if key != "" {
			saved.keys = append(saved.keys, key)
		}
		if it.Result != nil && it.Result.Reference != "" && !it.Replayed {
			saved.refs = append(saved.refs, it.Result.Reference)
		}
		if it.Err != nil {
			failed = i
			break
		}
	}
	if failed < 0 {
		return
	}
	// Undo the unit: balances, rows, sequence numbers, targets, and what
	// the rest of the batch would otherwise see of it.
	s.Book.Restore(saved.snap)
	d.Transactions, d.Legs, d.Keys = d.Transactions[:saved.txs], d.Legs[:saved.legs], d.Keys[:saved.keyRecs]
	s.Sequence = saved.seq
	for _, k := range saved.keys {
		delete(s.Keys, k)
	}
	for _, r := range saved.refs {
		delete(s.References, r)
	}
	for id, t := range saved.targets {
		*s.Targets[id].Tx = t
	}
	u.FailedIndex = failed
	for i, it := range u.Items {
		if i != failed {
			it.Result, it.Replayed, it.Err = nil, false, nil
		}
	}
}

// decideItem decides one item in the order of the API contract: the
// target of an action must exist (not_found), then idempotency, then the
// business rules. It returns the idempotency key it recorded a new outcome
// for, if any.
func (s *State) decideItem(d *Decisions, it *WriteItem) (recorded string) {
	it.Result, it.Err, it.Replayed = nil, nil, false
	var target *Target
	if it.Action != nil {
		target = s.Targets[it.Action.Target]
		if target == nil {
			if it.Action.Kind == ActionExpire {
				return ""
			}
			it.Err = Errorf(CodeNotFound, "no transaction %q", it.Action.Target)
			return ""
		}
	}
	key := it.IdempotencyKey
	if key != "" {
		if k := s.Keys[key]; k != nil {
			if k.Hash == nil || string(k.Hash) != string(it.RequestHash) {
				it.Err = ErrKeyReused()
			} else {
				it.Result, it.Err, it.Replayed = k.Tx, k.Err, true
			}
			return ""
		}
	}
	plan, legsFrom, err := s.judge(d, it, target)
	if err == ErrNothingToDo {
		return ""
	}
	if err != nil {
		it.Err = err
		if key != "" && err.Code.Stored() {
			d.Keys = append(d.Keys, KeyRecord{Key: key, Hash: it.RequestHash, Err: err})
			s.Keys[key] = &KeyOutcome{Hash: it.RequestHash, Err: err}
			return key
		}
		return ""
	}
	t := s.accept(d, it, target, plan, legsFrom)
	it.Result = t
	if key != "" {
		d.Keys = append(d.Keys, KeyRecord{Key: key, Hash: it.RequestHash, ID: d.Transactions[len(d.Transactions)-1].ID, Tx: t})
		s.Keys[key] = &KeyOutcome{Hash: it.RequestHash, Tx: t}
		return key
	}
	return ""
}

// judge applies the business rules of one item to the book: its
// reference must be free, its action possible on its target, its moves
// within balances. On success the legs appended to d.Legs from legsFrom
// are the item's.
func (s *State) judge(d *Decisions, it *WriteItem, target *Target) (plan *Plan, legsFrom int, err *Error) {
	req := it.Request
	if req.Reference != "" {
		if other, ok := s.References[req.Reference]; ok {
			return nil, 0, &Error{Code: CodeDuplicateReference,
				Detail: "reference " + req.Reference + " is already used", TransactionID: other}
		}
	}
	legsFrom = len(d.Legs)
	if it.Action != nil {
		plan, err = PlanAction(it.Action, target.Tx, s.At)
		if err != nil {
			return nil, 0, err
		}
		d.Legs, err = s.Book.ApplyMoves(plan.Moves, plan.CheckMin, d.Legs)
		return plan, legsFrom, err
	}
	d.Legs, err = s.Book.Apply(req.Postings, req.Pending, d.Legs)
	return nil, legsFrom, err
}

// accept assigns the next sequence number and an id to an item that
// passed judge, records it in d, and updates the state and its target.
func (s *State) accept(d *Decisions, it *WriteItem, target *Target, plan *Plan, legsFrom int) *Transaction {
	req := it.Request
	postings, status := req.Postings, StatusPosted
	if plan != nil {
		postings, status = plan.Postings, plan.Status
	} else if req.Pending {
		status = StatusPending
	}
	s.Sequence++
	id := s.NewID(s.At)
	t := &Transaction{ID: FormatID(id), Sequence: s.Sequence, Status: status,
		Postings: postings, Metadata: req.Metadata, Reference: req.Reference, CreatedAt: s.At}
	if it.Action == nil && req.Pending && req.PendingTimeout > 0 {
		e := s.At.Add(time.Duration(req.PendingTimeout) * time.Second)
		t.ExpiresAt = &e
	}
	if target != nil {
		switch it.Action.Kind {
		case ActionReverse:
			t.Reverses = target.Tx.ID
			target.Tx.ReversedBy = t.ID
		default:
			t.PendingID = target.Tx.ID
			target.Tx.Status = plan.TargetStatus
			target.Tx.ResolvedBy = t.ID
		}
		target.Changed = true
	}
	if it.Action == nil && req.EncodedPostings != nil {
		t.RawPostings, t.RawMetadata = req.EncodedPostings, req.EncodedMetadata
	} else {
		t.RawPostings = AppendPostingsJSON(nil, postings)
		t.RawMetadata = AppendMetadataJSON(nil, req.Metadata)
	}
	d.Transactions = append(d.Transactions, Decided{ID: id, Tx: t, LegsFrom: legsFrom, LegsTo: len(d.Legs)})
	if req.Reference != "" {
		s.References[req.Reference] = t.ID
	}
	return t
}

// ErrKeyReused is the rejection of a request whose Idempotency-Key was
// used with a different request.
func ErrKeyReused() *Error {
	return Errorf(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request")
}

// FormatID renders a 16-byte id in the canonical UUID form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, lower case).
func FormatID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
