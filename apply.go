package ledgerd

// Book is the in-memory view of the accounts a batch touches. The batcher
// loads and locks the rows, applies each item with Apply in request order,
// and writes back the aggregated result; Apply itself is pure, so the rules
// of docs/api.md §Invariants (double entry, min_balance, no overflow) live here and are
// unit-tested without a database.
type Book struct {
	accounts map[string]*BookAccount
}

// BookAccount is one account's state inside a Book.
type BookAccount struct {
	Asset      string
	MinBalance *int64
	Balance    Balance
	Version    int64
	// Frozen accounts may be credited but not debited.
	Frozen bool
	// Touched is set once any applied transaction changed the account, so
	// the writer updates only the rows that moved.
	Touched bool
}

// NewBook returns an empty book.
func NewBook(size int) *Book {
	return &Book{accounts: make(map[string]*BookAccount, size)}
}

// Put adds an account as loaded from storage.
func (b *Book) Put(id string, a *BookAccount) { b.accounts[id] = a }

// Get returns an account, or nil.
func (b *Book) Get(id string) *BookAccount { return b.accounts[id] }

// Accounts calls fn for every account in the book.
func (b *Book) Accounts(fn func(id string, a *BookAccount)) {
	for id, a := range b.accounts {
		fn(id, a)
	}
}

// Leg is one side of a posting as applied to one account: the account's
// balance right after it, for statements and balance history.
type Leg struct {
	Account      string
	PostingIndex int
	// Amount is signed: + credit, − debit.
	Amount int64
	// Pending legs move only pending totals: holds, voids, expiries.
	Pending     bool
	PostedAfter int64
	// PendingDebitsAfter and PendingCreditsAfter are the account's pending
	// totals after the whole transaction, and Version its version then:
	// with PostedAfter of its last leg in the transaction, the account's
	// balance as that transaction left it.
	PendingDebitsAfter, PendingCreditsAfter int64
	Version                                 int64
}

// Snapshot is the state of the accounts an Apply may change, so that an
// atomic batch can undo earlier items when a later one fails.
type Snapshot map[string]BookAccount

// Snapshot saves the current state of the given accounts.
func (b *Book) Snapshot(ids []string) Snapshot {
	s := make(Snapshot, len(ids))
	for _, id := range ids {
		if a := b.accounts[id]; a != nil {
			s[id] = *a
		}
	}
	return s
}

// Restore puts back a snapshot.
func (b *Book) Restore(s Snapshot) {
	for id, a := range s {
		*b.accounts[id] = a
	}
}

type delta struct {
	posted, pendingDebits, pendingCredits int64
}

// Move is what one posting does to its two accounts: Posted moves from
// source to destination; Pending is added to the source's pending debits
// and the destination's pending credits (negative to release a hold).
type Move struct {
	Source, Destination, Asset string
	Posted, Pending            int64
}

// Apply applies postings to the book as one transaction, all or nothing.
// With pending, the postings move only the pending totals (a hold). It
// returns the legs in posting order (source then destination) or the
// business rejection; on rejection the book is unchanged.
func (b *Book) Apply(postings []Posting, pending bool, legs []Leg) ([]Leg, *Error) {
	moves := make([]Move, len(postings))
	for i, p := range postings {
		moves[i] = Move{Source: p.Source, Destination: p.Destination, Asset: p.Asset, Posted: p.Amount}
		if pending {
			moves[i].Posted, moves[i].Pending = 0, p.Amount
		}
	}
	return b.ApplyMoves(moves, true, legs)
}

// ApplyMoves applies moves as one transaction, all or nothing. With
// checkMin, min_balance is enforced, judged on the transaction's net effect
// on each account: an account whose available balance does not go down is
// never rejected, even if it already sits below its minimum. Only an
// admin's forced reversal passes checkMin false.
//
// Legs report each move's posted amount (signed: + credit, − debit) and
// the running posted balance after it; a move that only changes pending
// totals is a leg with Pending set and its pending amount.
func (b *Book) ApplyMoves(moves []Move, checkMin bool, legs []Leg) ([]Leg, *Error) {
	// A transaction touches few accounts (two for a transfer, at most 128):
	// a linear scan of a small slice beats maps, and this runs for every
	// transaction while the ledger's ordering lock is held.
	var buf [4]touched
	ts := buf[:0]
	idx := func(id string) (int, *Error) {
		for i := range ts {
			if ts[i].id == id {
				return i, nil
			}
		}
		a := b.accounts[id]
		if a == nil {
			return 0, &Error{Code: CodeAccountNotFound, Detail: "account " + id + " does not exist"}
		}
		ts = append(ts, touched{id: id, a: a})
		return len(ts) - 1, nil
	}
	for _, m := range moves {
		si, err := idx(m.Source)
		if err != nil {
			return legs, err
		}
		di, err := idx(m.Destination)
		if err != nil {
			return legs, err
		}
		src, dst := &ts[si], &ts[di]
		if src.a.Asset != m.Asset || dst.a.Asset != m.Asset {
			return legs, Errorf(CodeAssetMismatch, "posting asset %s does not match the accounts' assets (%s → %s)", m.Asset, src.a.Asset, dst.a.Asset)
		}
		// A debit moves value (or a hold on it) out of the source; a
		// void's or expiry's negative pending move only gives it back.
		if src.a.Frozen && (m.Posted > 0 || m.Pending > 0) {
			return legs, Errorf(CodeAccountFrozen, "account %s is frozen", m.Source)
		}
		var ok [4]bool
		src.d.posted, ok[0] = sub(src.d.posted, m.Posted)
		dst.d.posted, ok[1] = add(dst.d.posted, m.Posted)
		src.d.pendingDebits, ok[2] = add(src.d.pendingDebits, m.Pending)
		dst.d.pendingCredits, ok[3] = add(dst.d.pendingCredits, m.Pending)
		if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
			return legs, overflow()
		}
	}
	for i := range ts {
		t := &ts[i]
		nb := t.a.Balance
		var ok1, ok2, ok3 bool
		nb.Posted, ok1 = add(nb.Posted, t.d.posted)
		nb.PendingDebits, ok2 = add(nb.PendingDebits, t.d.pendingDebits)
		nb.PendingCredits, ok3 = add(nb.PendingCredits, t.d.pendingCredits)
		if !ok1 || !ok2 || !ok3 {
			return legs, overflow()
		}
		avail, ok := nb.Available()
		if !ok {
			return legs, overflow()
		}
		if checkMin && t.a.MinBalance != nil {
			before, _ := t.a.Balance.Available()
			if avail < before && avail < *t.a.MinBalance {
				return legs, Errorf(CodeInsufficientFunds, "account %s has insufficient funds", t.id)
			}
		}
		t.next = nb
	}
	for i := range ts {
		t := &ts[i]
		// Running posted balance per leg, in posting order, so statements
		// show a balance after every line even when one transaction
		// touches an account twice.
		t.running = t.a.Balance.Posted
		t.a.Balance = t.next
		t.a.Version++
		t.a.Touched = true
	}
	for i, m := range moves {
		pending := m.Posted == 0
		amt := m.Posted
		if pending {
			amt = m.Pending
			if amt < 0 {
				amt = -amt
			}
		}
		si, _ := idx(m.Source)
		di, _ := idx(m.Destination)
		src, dst := &ts[si], &ts[di]
		src.running -= m.Posted
		legs = append(legs, Leg{Account: m.Source, PostingIndex: i, Amount: -amt, Pending: pending, PostedAfter: src.running,
			PendingDebitsAfter: src.a.Balance.PendingDebits, PendingCreditsAfter: src.a.Balance.PendingCredits, Version: src.a.Version})
		dst.running += m.Posted
		legs = append(legs, Leg{Account: m.Destination, PostingIndex: i, Amount: amt, Pending: pending, PostedAfter: dst.running,
			PendingDebitsAfter: dst.a.Balance.PendingDebits, PendingCreditsAfter: dst.a.Balance.PendingCredits, Version: dst.a.Version})
	}
	return legs, nil
}

// touched is one account's share of a transaction being applied.
type touched struct {
	id      string
	a       *BookAccount
	d       delta
	next    Balance
	running int64
}

func overflow() *Error {
	return &Error{Code: CodeValidationFailed, Detail: "the transaction would take a balance outside the signed 64-bit range",
		Fields: []FieldError{{Field: "postings", Message: "balance overflow"}}}
}
