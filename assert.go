package ledgerd

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvariant marks a batch whose decisions break an invariant of the
// ledger. It can only come from a bug (or memory corruption): the batch is
// not written, its callers get 500 internal, and it is logged loudly.
var ErrInvariant = errors.New("ledger invariant violated")

// CheckDecisions asserts, before anything is written, what no decision
// may ever break (TigerBeetle style: cheap checks at the point of
// writing): every accepted transaction's legs sum to zero per asset, the
// sequence numbers continue the ledger's without a gap, and created_at
// never goes below the ledger's last. book gives each leg's asset;
// lastSequence and lastAt are the ledger's as loaded under the lock.
func CheckDecisions(d *Decisions, book *Book, lastSequence int64, lastAt time.Time) error {
	prevAt := lastAt
	for i := range d.Transactions {
		t := &d.Transactions[i]
		if want := lastSequence + int64(i) + 1; t.Tx.Sequence != want {
			return fmt.Errorf("%w: transaction %d of the batch has sequence %d, want %d", ErrInvariant, i, t.Tx.Sequence, want)
		}
		if t.Tx.CreatedAt.Before(prevAt) {
			return fmt.Errorf("%w: sequence %d created at %s, before %s", ErrInvariant, t.Tx.Sequence,
				t.Tx.CreatedAt.Format(time.RFC3339Nano), prevAt.Format(time.RFC3339Nano))
		}
		prevAt = t.Tx.CreatedAt
		if err := checkLegs(d.LegsOf(t), book); err != nil {
			return fmt.Errorf("%w: sequence %d: %v", ErrInvariant, t.Tx.Sequence, err)
		}
	}
	return nil
}

// checkLegs asserts that legs sum to zero per asset. A transaction holds
// few assets (one, almost always): a small slice, no map.
func checkLegs(legs []Leg, book *Book) error {
	type sum struct {
		asset string
		total int64
	}
	var buf [2]sum
	sums := buf[:0]
	for _, l := range legs {
		a := book.Get(l.Account)
		if a == nil {
			return fmt.Errorf("leg of unknown account %s", l.Account)
		}
		i := 0
		for i < len(sums) && sums[i].asset != a.Asset {
			i++
		}
		if i == len(sums) {
			sums = append(sums, sum{asset: a.Asset})
		}
		// Each leg is within int64 (the book checked); a wrapped sum of
		// legs that cancel still comes back to zero.
		sums[i].total += l.Amount
	}
	for _, s := range sums {
		if s.total != 0 {
			return fmt.Errorf("legs in %s sum to %d", s.asset, s.total)
		}
	}
	return nil
}
