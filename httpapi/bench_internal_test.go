package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// The request decode and response encode are on every request's path; the
// write-ups' lesson is that serialisation, not the database, was the real
// bottleneck. These keep the cost visible: go test -bench . -benchmem ./httpapi

var benchBody = []byte(`{"postings":[{"source":"acct:000123","destination":"acct:004567","amount":1500,"asset":"USD"}],` +
	`"metadata":{"order":"A-17","channel":"web"},"reference":"psp-ch_1234567890"}`)

func BenchmarkDecodeTransaction(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if err := wellFormed(benchBody); err != nil {
			b.Fatal(err)
		}
		var v ledgerd.Validation
		var req ledgerd.TransactionRequest
		decodeTransaction(jx.DecodeBytes(benchBody), &v, "", &req, nil)
		if v.Failed() {
			b.Fatal(v.Err())
		}
	}
}

// BenchmarkDecodeTransactionStdlib is the encoding/json baseline the jx
// decoder was chosen against (it cannot tell 1.5 from 1 or catch duplicate
// members without more work, so it is a lower bound of its cost).
func BenchmarkDecodeTransactionStdlib(b *testing.B) {
	type posting struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		Amount      int64  `json:"amount"`
		Asset       string `json:"asset"`
	}
	type request struct {
		Postings  []posting         `json:"postings"`
		Metadata  map[string]string `json:"metadata"`
		Reference string            `json:"reference"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		var r request
		if err := json.Unmarshal(benchBody, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTx() *ledgerd.Transaction {
	t := &ledgerd.Transaction{ID: "01a2024e-4660-75f6-aed1-d345ae365154", Sequence: 1042, Status: ledgerd.StatusPosted,
		Postings:  []ledgerd.Posting{{Source: "acct:000123", Destination: "acct:004567", Amount: 1500, Asset: "USD"}},
		Metadata:  map[string]string{"order": "A-17"},
		Reference: "psp-ch_1234567890", CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)}
	t.RawPostings = ledgerd.AppendPostingsJSON(nil, t.Postings)
	t.RawMetadata = ledgerd.AppendMetadataJSON(nil, t.Metadata)
	return t
}

func BenchmarkEncodeTransaction(b *testing.B) {
	t := benchTx()
	e := jx.GetEncoder()
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		encodeTransaction(e, t)
	}
	b.SetBytes(int64(len(e.Bytes())))
}

func BenchmarkEncodeTransactionStdlib(b *testing.B) {
	t := benchTx()
	type out struct {
		ID        string            `json:"id"`
		Sequence  int64             `json:"sequence"`
		Status    string            `json:"status"`
		Postings  json.RawMessage   `json:"postings"`
		Metadata  map[string]string `json:"metadata"`
		Reference string            `json:"reference"`
		CreatedAt time.Time         `json:"created_at"`
	}
	o := out{t.ID, t.Sequence, string(t.Status), t.RawPostings, t.Metadata, t.Reference, t.CreatedAt}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(o); err != nil {
			b.Fatal(err)
		}
	}
}
