package httpapi

import "testing"

// TestBodyBudgetAlone: a request alone may pass a budget smaller than
// itself (else it could never run); beside another holder it may not, and
// what it gives back is free again.
func TestBodyBudgetAlone(t *testing.T) {
	b := newBodyBudget(100, 60)
	big := &bodyShare{b: b, key: "k"}
	if err := big.grow(80); err != nil {
		t.Fatalf("alone, 80 of a key budget of 60: %v", err)
	}
	if err := big.grow(90); err != nil {
		t.Fatalf("alone, growing to 90: %v", err)
	}
	small := &bodyShare{b: b, key: "k"}
	if err := small.grow(1); err != errKeyBudget {
		t.Fatalf("same key beside 90: %v", err)
	}
	other := &bodyShare{b: b, key: "j"}
	if err := other.grow(20); err != errNodeBudget {
		t.Fatalf("another key, node at 90 of 100: %v", err)
	}
	if err := other.grow(10); err != nil {
		t.Fatalf("another key, 10 more: %v", err)
	}
	big.release()
	other.release()
	if b.node != 0 || len(b.keys) != 0 {
		t.Fatalf("after release: node %d, keys %v", b.node, b.keys)
	}
}
