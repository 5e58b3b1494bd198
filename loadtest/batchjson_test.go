package loadtest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// batchJSONCases are answers a server sends, and ones it should not.
var batchJSONCases = []string{
	`{"results":[{"index":0,"status":201,"transaction":{"id":"t1","sequence":7,"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":{},"reference":null}},{"index":1,"status":422,"error":{"type":"about:blank","title":"x","status":422,"code":"insufficient_funds","detail":"\u00e9"}}]}`,
	`{"results":[{"status":200},{"status":503,"error":{"code":"commit_outcome_unknown"}},null,{"status":null,"error":null}]}`,
	` {"results":[]} trailing garbage`,
	`{"results":null}`,
	`null`,
	``,
	`   `,
	`[]`,
	`"x"`,
	`12`,
	`{"results":{}}`,
	`{"results":[1]}`,
	`{"results":[{"status":"201"}]}`,
	`{"results":[{"status":201.0}]}`,
	`{"results":[{"status":2e2}]}`,
	`{"results":[{"status":-0}]}`,
	`{"results":[{"status":99999999999999999999}]}`,
	`{"results":[{"status":-9223372036854775808}]}`,
	`{"results":[{"status":01}]}`,
	`{"results":[{"error":"x"}]}`,
	`{"results":[{"error":{"code":5}}]}`,
	`{"results":[{"error":{"code":"a"},"error":{}}]}`,
	`{"results":[{"error":{"code":"a"},"error":null}]}`,
	`{"results":[{"Status":201,"ERROR":{"Code":"b"}}]}`,
	`{"RESULTS":[{"ſtatus":201}]}`,
	`{"re\u0073ults":[{"st\u0061tus":202,"error":{"code":"c\u0041\ud800"}}]}`,
	`{"results":[{"status":201,"error":{"code":"\xff\xfe"}}]}`,
	`{"results":[{"status":201},{"status":202}],"results":[{"error":{"code":"z"}}]}`,
	`{"results":[{"status":201}],"results":[]}`,
	`{"results":[{"status":201}],"results":null}`,
	`{"results":[{"status":201},]}`,
	`{"results":[{"status":201}}`,
	`{"results":[{"status":201}]`,
	`{"results":[{"status":201 "x":1}]}`,
	`{"results":[{"status":201,"x":[1,2,{"y":[true,false,null,"s\"\\\/\b\f\n\r\t"]}],"z":-1.5e+3}]}`,
	`{"results":[{"status":201,"x":tru}]}`,
	`{"results":[{"status":201,"x":"a` + "\x01" + `"}]}`,
	`{"results":[{"status":201,"x":"\x"}]}`,
	`{"results":[{"status":201,"x":"\u12"}]}`,
	`{"results":[{"status":201,"x":1.}]}`,
	`{"results":[{"status":201,"x":-}]}`,
	`{"results":[{"status":201,"x":1e}]}`,
	`{"results":[{"status":201,"x":.5}]}`,
	`{"x":1,}`,
	`{,}`,
	`{"a" 1}`,
	`{"a":1}x`,
	`nullx`,
	`nul`,
	`{"results":[{"status":201}]}` + "\n" + `{"results":[]}`,
}

// deepJSONCases probe the nesting limit; too large to seed the fuzzer.
var deepJSONCases = []string{
	strings.Repeat(`[`, maxJSONDepth-1) + strings.Repeat(`]`, maxJSONDepth-1),
	`{"x":` + strings.Repeat(`[`, maxJSONDepth-1) + strings.Repeat(`]`, maxJSONDepth-1) + `}`,
	`{"x":` + strings.Repeat(`[`, maxJSONDepth) + strings.Repeat(`]`, maxJSONDepth) + `}`,
	`{"x":` + strings.Repeat(`{"a":`, maxJSONDepth) + `1` + strings.Repeat(`}`, maxJSONDepth) + `}`,
}

// checkBatchJSON holds decodeBatch to encoding/json for one body, decoded
// into a fresh answer and into one that already holds results.
func checkBatchJSON(t *testing.T, body []byte) {
	t.Helper()
	held := []itemResult{{Status: 1, Error: &itemError{Code: "p"}}, {Status: 2}, {Status: 3}}
	for _, prior := range [][]itemResult{nil, held[:2]} {
		want := batchAnswer{Results: cloneItems(prior)}
		wantErr := json.NewDecoder(bytes.NewReader(body)).Decode(&want)
		got := batchAnswer{Results: cloneItems(prior)}
		gotErr := decodeBatch(&got)(body)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q (prior %v): error %v, encoding/json %v", body, prior, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q (prior %v):\n got %s\nwant %s", body, prior, dumpItems(got.Results), dumpItems(want.Results))
		}
	}
}

// cloneItems copies the results and, past their length, their capacity,
// since a decode into a slice reuses both.
func cloneItems(items []itemResult) []itemResult {
	if items == nil {
		return nil
	}
	full := items[:cap(items)]
	out := make([]itemResult, len(full))
	for i, it := range full {
		if it.Error != nil {
			e := *it.Error
			it.Error = &e
		}
		out[i] = it
	}
	return out[:len(items)]
}

func dumpItems(items []itemResult) string {
	if items == nil {
		return "nil"
	}
	var b strings.Builder
	for _, it := range items {
		b.WriteString(it.key())
		b.WriteByte(' ')
	}
	return b.String()
}

func TestDecodeBatchMatchesEncodingJSON(t *testing.T) {
	for _, c := range append(batchJSONCases, deepJSONCases...) {
		checkBatchJSON(t, []byte(c))
	}
}

func TestDecodeBatch(t *testing.T) {
	var ans batchAnswer
	body := `{"results":[{"index":0,"status":201,"transaction":{"id":"x"}},{"index":1,"status":422,"error":{"code":"insufficient_funds"}}]}`
	if err := decodeBatch(&ans)([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if len(ans.Results) != 2 || ans.Results[0].key() != "201" || ans.Results[1].key() != "422/insufficient_funds" {
		t.Fatalf("got %s", dumpItems(ans.Results))
	}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, c := range batchJSONCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkBatchJSON(t, body)
	})
}

// A decode of a typical answer allocates nothing but the results.
func BenchmarkDecodeBatch(b *testing.B) {
	body := batchAnswerBody(1000)
	b.Run("lean", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var ans batchAnswer
		for b.Loop() {
			if err := decodeBatch(&ans)(body); err != nil || len(ans.Results) != 1000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var ans batchAnswer
			if err := decodeJSON(&ans)(body); err != nil || len(ans.Results) != 1000 {
				b.Fatal(err)
			}
		}
	})
}

// batchAnswerBody is an answer like ledgerd's to a batch of n transfers.
func batchAnswerBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"results":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if i%200 == 7 {
			b.WriteString(`{"index":7,"status":422,"error":{"type":"https://ledgerd.dev/problems/insufficient_funds","title":"Insufficient funds","status":422,"code":"insufficient_funds","detail":"account acct:000123 would go below its min_balance"}}`)
			continue
		}
		b.WriteString(`{"index":12,"status":201,"transaction":{"id":"01JD2W8Q5K3M9ZJ8Y1V6C4B7NX","sequence":123456,"ledger":"bench-batch","postings":[{"source":"acct:004711","destination":"acct:000815","amount":57,"asset":"USD"}],"reference":"ref-0a1b2c3d4e5f-3-1x","metadata":{},"idempotency_key":"lt-0a1b2c3d4e5f-3-1y","timestamp":"2026-11-22T15:04:05.123456Z"}}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}
