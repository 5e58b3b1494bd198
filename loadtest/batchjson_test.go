package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-faster/jx"
)

// batchJSONCases are answers a server sends, and ones it should not, with
// what decodeBatch makes of them: the results' keys, or "error".
var batchJSONCases = []struct{ body, want string }{
	{`{"results":[{"index":0,"status":201,"transaction":{"id":"t1","sequence":7,"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":{},"reference":null}},{"index":1,"status":422,"error":{"type":"about:blank","title":"x","status":422,"code":"insufficient_funds","detail":"\u00e9"}}]}`, "201 422/insufficient_funds"},
	{`{"results":[{"status":200},{"status":503,"error":{"code":"commit_outcome_unknown"}},null,{"status":null,"error":null}]}`, "200 503/commit_outcome_unknown 0 0"},
	{`{"results":[{"status":409,"error":{"code":null}},{"status":409,"error":{}}]}`, "409 409"},
	{`{"x":{"results":1},"results":[{"status":201,"x":[1,2,{"y":[true,false,null,"s\"\\\/\b\f\n\r\t"]}],"z":-1.5e+3}],"y":[]}`, "201"},
	{`{"re\u0073ults":[{"st\u0061tus":202,"error":{"code":"c\u0041"}}]}`, "202/cA"},
	{`{"results":[{"status":-0}]}`, "0"},
	{`{"results":[{"status":201}]} trailing garbage`, "201"},
	{`{"results":[{"status":201}]}` + "\n" + `{"results":[]}`, "201"},
	{` {"results":[]} `, ""},
	{`{"results":[{"error":{"code":"a"},"error":{}}]}`, "0/a"},
	{`{"results":[{"error":{"code":"a"},"error":null}]}`, "0"},

	// No "results" array.
	{`{"results":null}`, "error"},
	{`{"results":{}}`, "error"},
	{`{"results":"x"}`, "error"},
	{`{}`, "error"},
	{`{"Results":[]}`, "error"}, // names are matched exactly
	{`null`, "error"},
	{``, "error"},
	{`   `, "error"},
	{`[]`, "error"},
	{`"x"`, "error"},
	{`12`, "error"},

	// Wrong types.
	{`{"results":[1]}`, "error"},
	{`{"results":[[]]}`, "error"},
	{`{"results":[{"status":"201"}]}`, "error"},
	{`{"results":[{"status":201.0}]}`, "error"},
	{`{"results":[{"status":2e2}]}`, "error"},
	{`{"results":[{"status":true}]}`, "error"},
	{`{"results":[{"status":99999999999999999999}]}`, "error"},
	{`{"results":[{"error":"x"}]}`, "error"},
	{`{"results":[{"error":[]}]}`, "error"},
	{`{"results":[{"error":{"code":5}}]}`, "error"},
	{`{"results":[{"error":{"code":{}}}]}`, "error"},

	// Malformed.
	{`{"results":[{"status":201},]}`, "error"},
	{`{"results":[{"status":201}}`, "error"},
	{`{"results":[{"status":201}]`, "error"},
	{`{"results":[{"status":201 "x":1}]}`, "error"},
	{`{"results":[{"status":01}]}`, "error"},
	{`{"results":[{"status":201,"x":tru}]}`, "error"},
	{`{"results":[{"status":201,"x":"a` + "\x01" + `"}]}`, "error"},
	{`{"results":[{"status":201,"x":"\x"}]}`, "error"},
	{`{"results":[{"status":201,"x":"\u12"}]}`, "error"},
	{`{"results":[{"status":201,"x":1.}]}`, "error"},
	{`{"results":[{"status":201,"x":-}]}`, "error"},
	{`{"results":[{"status":201,"x":1e}]}`, "error"},
	{`{"results":[{"status":201,"x":.5}]}`, "error"},
	{`{"results":[],"x":1,}`, "error"},
	{`{,}`, "error"},
	{`{"a" 1}`, "error"},
	{`nul`, "error"},
	{`{"results":[], "x":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`, "error"},
}

func TestDecodeBatch(t *testing.T) {
	for _, c := range batchJSONCases {
		var ans batchAnswer
		err := decodeBatch(&ans)([]byte(c.body))
		got := "error"
		if err == nil {
			got = strings.TrimSpace(dumpItems(ans.Results))
		}
		if got != c.want {
			t.Errorf("%.80q: got %q (%v), want %q", c.body, got, err, c.want)
		}
		checkBatchJSON(t, []byte(c.body))
	}
}

// checkBatchJSON holds decodeBatch to encoding/json for one body. Where
// decodeBatch accepts the body and its member names are exact and not
// repeated, encoding/json must decode the same results; where decodeBatch
// rejects it, encoding/json must too, unless "results" is missing or null
// or the names are not exact.
func checkBatchJSON(t *testing.T, body []byte) {
	t.Helper()
	var got, want batchAnswer
	gotErr := decodeBatch(&got)(body)
	wantErr := json.NewDecoder(bytes.NewReader(body)).Decode(&want)
	if gotErr != nil {
		if wantErr == nil && want.Results != nil && exactNames(body) {
			t.Fatalf("%q: error %v, encoding/json %s", body, gotErr, dumpItems(want.Results))
		}
		return
	}
	if !exactNames(body) {
		return
	}
	if wantErr != nil {
		t.Fatalf("%q: %s, encoding/json error %v", body, dumpItems(got.Results), wantErr)
	}
	// Where a code is not valid UTF-8, encoding/json puts U+FFFD for each
	// bad byte and jx keeps the bytes (fuzz corpus 8909e16f); both are
	// "invalid_code" to the report. Compare after the same replacement.
	for _, it := range got.Results {
		if it.Error != nil {
			it.Error.Code = string([]rune(it.Error.Code))
		}
	}
	if len(got.Results) != len(want.Results) || len(got.Results) > 0 && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %s\nwant %s", body, dumpItems(got.Results), dumpItems(want.Results))
	}
}

var errInexactName = errors.New("inexact member name")

// exactNames reports whether the first JSON value of body is valid for jx,
// no object in it has a member twice, and no member name matches a field
// of batchAnswer only as encoding/json matches names, case-insensitively.
func exactNames(body []byte) bool {
	var walk func(d *jx.Decoder) error
	walk = func(d *jx.Decoder) error {
		switch d.Next() {
		case jx.Object:
			seen := map[string]bool{}
			return d.ObjBytes(func(d *jx.Decoder, key []byte) error {
				k := string(key)
				if seen[k] {
					return errInexactName
				}
				seen[k] = true
				for _, f := range []string{"results", "status", "error", "code"} {
					if k != f && strings.EqualFold(k, f) {
						return errInexactName
					}
				}
				return walk(d)
			})
		case jx.Array:
			return d.Arr(walk)
		}
		return d.Skip()
	}
	return walk(jx.DecodeBytes(body)) == nil
}

func dumpItems(items []itemResult) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(it.key())
		b.WriteByte(' ')
	}
	return b.String()
}

func FuzzDecodeBatch(f *testing.F) {
	for _, c := range batchJSONCases {
		if len(c.body) < 1000 {
			f.Add([]byte(c.body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkBatchJSON(t, body)
	})
}

// A decode of a typical answer allocates little but the results.
func BenchmarkDecodeBatch(b *testing.B) {
	body := batchAnswerBody(1000)
	b.Run("jx", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var ans batchAnswer
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
