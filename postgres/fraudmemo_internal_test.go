package postgres

import (
	"testing"

	"github.com/ledgerd/ledgerd"
)

// TestFraudMemo: a ledger's memory serves only the step that starts where
// the step that wrote it ended, under the same need; it is cut to need
// debits an account and bounded in all.
func TestFraudMemo(t *testing.T) {
	t.Parallel()
	debits := func(n int) []ledgerd.PastDebit {
		out := make([]ledgerd.PastDebit, n)
		for i := range out {
			out[i] = ledgerd.PastDebit{Sequence: int64(i + 1), Amount: int64(i + 1)}
		}
		return out
	}
	m := NewFraudMemo(10)
	m.put(1, 100, 3, map[string][]ledgerd.PastDebit{"a": debits(5)})
	if got := m.take(1, 99, 3); got != nil {
		t.Fatalf("memory through 100 served a step after 99: %v", got)
	}
	if got := m.take(1, 100, 3); got != nil {
		t.Fatal("a memory taken once (even refused) is gone")
	}
	m.put(1, 100, 3, map[string][]ledgerd.PastDebit{"a": debits(5)})
	if got := m.take(1, 100, 4); got != nil {
		t.Fatal("memory served rules that need more debits")
	}
	m.put(1, 100, 3, map[string][]ledgerd.PastDebit{"a": debits(5)})
	got := m.take(1, 100, 3)
	if a := got["a"]; len(a) != 3 || a[0].Sequence != 3 || a[2].Sequence != 5 {
		t.Fatalf("history %v, want the latest 3 debits", a)
	}
	m.put(2, 7, 3, map[string][]ledgerd.PastDebit{"a": debits(3), "b": debits(3), "c": debits(3), "d": debits(3)})
	if m.n != 9 || len(m.ledgers[2].recent) != 3 {
		t.Fatalf("held %d debits of %d accounts, want 9 of 3 (at most 10)", m.n, len(m.ledgers[2].recent))
	}
	if m.take(2, 7, 3) == nil || m.n != 0 {
		t.Fatalf("after take: %d debits held", m.n)
	}
	var nilMemo *FraudMemo
	nilMemo.put(1, 1, 1, nil)
	if nilMemo.take(1, 1, 1) != nil {
		t.Fatal("nil memo")
	}
}
