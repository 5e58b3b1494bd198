package ledgerd

import (
	"fmt"
	"testing"
)

// BenchmarkApply is the in-memory step of a batch: one transfer applied to
// a book of the batch's accounts (go test -bench Apply -benchmem).
func BenchmarkApply(b *testing.B) {
	bk := NewBook(1000)
	for i := range 1000 {
		bk.Put(fmt.Sprintf("acct:%06d", i), &BookAccount{Asset: "USD", MinBalance: i64(0), Balance: Balance{Posted: 1 << 40}})
	}
	ps := []Posting{{Source: "acct:000001", Destination: "acct:000002", Amount: 1, Asset: "USD"}}
	var legs []Leg
	b.ReportAllocs()
	for b.Loop() {
		var err *Error
		legs, err = bk.Apply(ps, false, legs[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}
