package postgres

import (
	"fmt"
	"math/rand/v2"

	"github.com/ledgerd/ledgerd"
)

// BenchTransfer is the standard workload's item for the benchmarks of this
// package: a transfer of 1 between two distinct random accounts among
// "acct:000000"… (accounts of them), with an idempotency key, and a
// reference for every other seq.
func BenchTransfer(r *rand.Rand, accounts, seq int) *ledgerd.WriteItem {
	src, dst := r.IntN(accounts), r.IntN(accounts-1)
	if dst >= src {
		dst++
	}
	req := &ledgerd.TransactionRequest{Postings: []ledgerd.Posting{{
		Source: fmt.Sprintf("acct:%06d", src), Destination: fmt.Sprintf("acct:%06d", dst), Amount: 1, Asset: "USD"}}}
	if seq%2 == 0 {
		req.Reference = fmt.Sprintf("ref-%d", seq)
	}
	req.Encode() // as the HTTP handler leaves it: postings and metadata rendered
	return &ledgerd.WriteItem{Request: req, IdempotencyKey: fmt.Sprintf("k-%d", seq), RequestHash: []byte{byte(seq)}}
}
