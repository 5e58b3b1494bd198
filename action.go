package ledgerd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ActionKind is what an Action does to an existing transaction.
type ActionKind int

// Actions on existing transactions. Each appends a new transaction; the
// target's postings never change (docs/api.md §Invariants 6).
const (
	ActionPost    ActionKind = iota + 1 // capture a hold, fully or partly
	ActionVoid                          // release a hold
	ActionExpire                        // release a hold past its deadline (the server's own action)
	ActionReverse                       // invert what a posted transaction moved
)

// Action is a request to resolve a hold or reverse a transaction. The new
// transaction's metadata and reference come from the WriteItem's Request.
type Action struct {
	Kind   ActionKind
	Target string
	// Amounts, for a capture, has one amount per posting of the hold; nil
	// captures everything.
	Amounts []int64
	// Force lets a reversal break min_balance (admin keys only).
	Force bool
}

// DueHold is a hold whose deadline has passed, for the expiry loop.
type DueHold struct {
	LedgerID int64
	ID       string
}

// IsHold reports whether t is a two-phase hold, resolved or not.
func (t *Transaction) IsHold() bool { return t.Status == StatusPending || t.ResolvedBy != "" }

// ErrNothingToDo marks an expiry that no longer applies (resolved, or not
// yet due): the item is dropped without an answer to anyone.
var ErrNothingToDo = &Error{Code: "", Detail: "nothing to do"}

// Plan is what an action will do: the moves to apply, the new
// transaction's postings and status, and the target's new state.
type Plan struct {
	Moves        []Move
	Postings     []Posting
	Status       Status // of the new transaction
	TargetStatus Status // of the target afterwards (holds only)
	CheckMin     bool
}

// PlanAction decides an action on target at time at (the batch's time, by
// the database clock). target.Postings must be set.
func PlanAction(a *Action, target *Transaction, at time.Time) (*Plan, *Error) {
	switch a.Kind {
	case ActionPost, ActionVoid, ActionExpire:
		return planResolution(a, target, at)
	case ActionReverse:
		return planReversal(a, target)
	}
	return nil, Errorf(CodeInternal, "unknown action %d", a.Kind)
}

func planResolution(a *Action, hold *Transaction, at time.Time) (*Plan, *Error) {
	expired := hold.ExpiresAt != nil && !at.Before(*hold.ExpiresAt)
	if a.Kind == ActionExpire {
		if hold.Status != StatusPending || !expired {
			return nil, ErrNothingToDo
		}
	} else {
		switch {
		case !hold.IsHold():
			return nil, Errorf(CodeInvalidState, "transaction %s is not a hold", hold.ID)
		case hold.Status != StatusPending:
			return nil, Errorf(CodeInvalidState, "hold %s is already %s", hold.ID, hold.Status)
		case expired:
			return nil, Errorf(CodeInvalidState, "hold %s expired at %s", hold.ID, hold.ExpiresAt.UTC().Format(time.RFC3339Nano))
		}
	}
	p := &Plan{Moves: make([]Move, len(hold.Postings))}
	captured := make([]int64, len(hold.Postings))
	if a.Kind == ActionPost {
		if a.Amounts == nil {
			for i, hp := range hold.Postings {
				captured[i] = hp.Amount
			}
		} else {
			var v Validation
			if len(a.Amounts) != len(hold.Postings) {
				v.Add("amounts", "needs one amount per posting of the hold (%d)", len(hold.Postings))
				return nil, v.Err()
			}
			any := false
			for i, n := range a.Amounts {
				if n < 0 || n > hold.Postings[i].Amount {
					v.Add("amounts["+strconv.Itoa(i)+"]", "must be between 0 and the held amount %d", hold.Postings[i].Amount)
				}
				any = any || n > 0
			}
			if !any && !v.Failed() {
				v.Add("amounts", "capturing nothing is a void: use …/void")
			}
			if v.Failed() {
				return nil, v.Err()
			}
			copy(captured, a.Amounts)
		}
	}
	for i, hp := range hold.Postings {
		p.Moves[i] = Move{Source: hp.Source, Destination: hp.Destination, Asset: hp.Asset,
			Posted: captured[i], Pending: -hp.Amount}
		switch {
		case a.Kind == ActionPost && captured[i] > 0:
			p.Postings = append(p.Postings, Posting{Source: hp.Source, Destination: hp.Destination, Amount: captured[i], Asset: hp.Asset})
		case a.Kind != ActionPost:
			p.Postings = append(p.Postings, hp)
		}
	}
	switch a.Kind {
	case ActionPost:
		p.Status, p.TargetStatus = StatusPosted, StatusCaptured
	case ActionVoid:
		p.Status, p.TargetStatus = StatusVoided, StatusVoided
	default:
		p.Status, p.TargetStatus = StatusExpired, StatusExpired
	}
	return p, nil
}

func planReversal(a *Action, t *Transaction) (*Plan, *Error) {
	switch {
	case t.IsHold():
		return nil, Errorf(CodeInvalidState, "transaction %s is a hold: void it, or reverse its capture", t.ID)
	case t.Status != StatusPosted:
		return nil, Errorf(CodeInvalidState, "transaction %s is %s and moved nothing to reverse", t.ID, t.Status)
	case t.Reverses != "":
		return nil, Errorf(CodeInvalidState, "transaction %s is a reversal; post a new transaction instead", t.ID)
	case t.ReversedBy != "":
		return nil, Errorf(CodeInvalidState, "transaction %s is already reversed by %s", t.ID, t.ReversedBy)
	}
	p := &Plan{Status: StatusPosted, CheckMin: !a.Force}
	for _, op := range t.Postings {
		inv := Posting{Source: op.Destination, Destination: op.Source, Amount: op.Amount, Asset: op.Asset}
		p.Postings = append(p.Postings, inv)
		p.Moves = append(p.Moves, Move{Source: inv.Source, Destination: inv.Destination, Asset: inv.Asset, Posted: inv.Amount})
	}
	return p, nil
}

// ParsePostingsJSON decodes postings stored by AppendPostingsJSON.
func ParsePostingsJSON(b []byte) ([]Posting, error) {
	var raw []struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		Amount      int64  `json:"amount"`
		Asset       string `json:"asset"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("stored postings: %w", err)
	}
	ps := make([]Posting, len(raw))
	for i, r := range raw {
		ps[i] = Posting{Source: r.Source, Destination: r.Destination, Amount: r.Amount, Asset: r.Asset}
	}
	return ps, nil
}
