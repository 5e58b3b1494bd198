package postgres

import (
	"sync"

	"github.com/ledgerd/ledgerd"
)

// FraudMemo is a worker's memory of the latest debits of the accounts it
// scored, so that a step reads from the log only the accounts it has not
// seen. It is a cache, never a source: a ledger's memory is used only
// when it was written by the step that moved the cursor to where the next
// step starts (so it holds every debit up to there) under rules that need
// as many debits; otherwise, and after a restart, the history comes from
// the log as if there were no memory. It holds at most max debits in all
// (40 bytes each).
type FraudMemo struct {
	mu      sync.Mutex
	max     int
	n       int
	ledgers map[int64]*memoLedger
}

type memoLedger struct {
	through, need int64
	debits        int
	recent        map[string][]ledgerd.PastDebit
}

// NewFraudMemo returns a memory of at most max debits.
func NewFraudMemo(max int) *FraudMemo {
	return &FraudMemo{max: max, ledgers: map[int64]*memoLedger{}}
}

// take removes a ledger's memory and returns it when it is valid for a
// step starting after sequence cur that needs need debits; nil otherwise.
// A step that fails puts nothing back: its changes to the histories are
// lost with it.
func (m *FraudMemo) take(ledgerID, cur, need int64) map[string][]ledgerd.PastDebit {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.ledgers[ledgerID]
	if l == nil {
		return nil
	}
	delete(m.ledgers, ledgerID)
	m.n -= l.debits
	if l.through != cur || l.need != need {
		return nil
	}
	return l.recent
}

// put stores a ledger's memory, valid through sequence through. Each
// history is cut to its latest need debits; accounts that do not fit are
// dropped at random.
func (m *FraudMemo) put(ledgerID, through, need int64, recent map[string][]ledgerd.PastDebit) {
	if m == nil || need == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.ledgers[ledgerID]; old != nil {
		m.n -= old.debits
	}
	l := &memoLedger{through: through, need: need, recent: recent}
	for id, r := range recent {
		if k := int64(len(r)); k > need {
			r = append(r[:0:0], r[k-need:]...)
			recent[id] = r
		}
		if m.n+len(r) > m.max {
			delete(recent, id)
			continue
		}
		m.n += len(r)
		l.debits += len(r)
	}
	m.ledgers[ledgerID] = l
}
