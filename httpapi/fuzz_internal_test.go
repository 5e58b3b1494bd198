package httpapi

// Fuzz targets for the strict decoders (docs/api.md §Validation). They
// need no database: transactions and accounts are decoded by the functions
// the handlers call, and batches go through the real handler of a Server
// whose writer commits to an in-memory fake.
//
// Properties, for every input:
//   - decoding never panics;
//   - a body that is not well-formed JSON is malformed_json and nothing else,
//     and well-formedness agrees with encoding/json;
//   - a decode without field errors yields a request that docs/api.md allows
//     (1 to 64 postings, every amount > 0, valid and distinct accounts, valid
//     assets, metadata and reference within limits), equal to what
//     encoding/json reads from the same bytes;
//   - decoding is deterministic;
//   - a body with a \u escape of half a surrogate pair is never accepted
//     whole (encoding/json and jx would read it as U+FFFD, a silent change).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
)

var txSeeds = []string{
	`{"postings":[{"source":"world","destination":"users:alice:wallet","amount":1500,"asset":"USD"}],"metadata":{"order":"A-17"},"reference":"psp-ch_123"}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"},{"source":"b","destination":"c","amount":9223372036854775807,"asset":"X_1"}],"pending":true,"pending_timeout_seconds":2592000}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":null,"reference":null,"pending":null,"pending_timeout_seconds":null}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"idempotency_key":"k-1"}`,
	` { "postings" : [ { "asset" : "USD" , "amount" : 5 , "destination" : "b" , "source" : "a" } ] } `,
	`{"postings":[{"source":"a","destination":"b","amount":"10","asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":1.5,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":1e3,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":9223372036854775808,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":-1,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":0,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"a","amount":1,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"amount":2,"asset":"USD"}]}`,
	`{"postings":[{"source":"a","destination":"b","asset":"USD"}]}`,
	`{"postings":[{"source":"_a","destination":"b c","amount":1,"asset":"usd"}],"x":1}`,
	`{"postings":[],"reference":1,"metadata":{"k":1,"k":"2"}}`,
	`{"postings":{},"pending":"yes","pending_timeout_seconds":0}`,
	`{"postings":[1,null,[],{}]}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"pending_timeout_seconds":60}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":{"":"x","\u0000":"y"},"reference":"\ud800"}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}]`,
	`{"postings":[]}x`,
	"{\"postings\":\"\xff\"}",
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":{"k":"\udc00","\ud83d\ude00":"\ud800\u0041"}}`,
	`{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"metadata":{"\uDBFF":"\\ud800"},"reference":"\ud83d\ude00\ufffd"}`,
	`[]`, `null`, `0`, `""`, ``, `{`, `}`, `{"a":}`, `{"postings":[{"source":"a",}]}`,
}

var accountSeeds = []string{
	`{"id":"users:alice:wallet","asset":"USD","min_balance":0,"metadata":{"owner":"alice"}}`,
	`{"id":"world","asset":"USD","min_balance":null}`,
	`{"id":"a","asset":"USD"}`,
	`{"id":"a","asset":"USD","min_balance":-9223372036854775808}`,
	`{"id":"a","asset":"USD","min_balance":9223372036854775808}`,
	`{"id":"a","asset":"USD","min_balance":1.0}`,
	`{"id":"a","asset":"USD","min_balance":"0"}`,
	`{"id":"a","asset":"USD","metadata":null}`,
	`{"id":"a","asset":"USD","id":"b"}`,
	`{"id":"_a","asset":"usd","x":1}`,
	`{"id":"a","asset":"USD","metadata":{"k":null}}`,
	`{"id":"a","asset":"USD"`, `[]`, `null`, ``, "{\"id\":\"\xc3\"}",
}

// loneEscape matches, leftmost first, an escaped backslash, a surrogate
// pair and a lone surrogate: only the last alternative is captured. It is
// an oracle written apart from the decoder's loneSurrogate.
var loneEscape = regexp.MustCompile(`\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})`)

// hasLoneSurrogate reports whether a body escapes half a surrogate pair.
func hasLoneSurrogate(body []byte) bool {
	for _, m := range loneEscape.FindAllSubmatchIndex(body, -1) {
		if m[2] >= 0 {
			return true
		}
	}
	return false
}

func addSeeds(f *testing.F, seeds []string, extra ...any) {
	for _, s := range seeds {
		f.Add(append([]any{[]byte(s)}, extra...)...)
	}
}

// checkWellFormed checks wellFormed against encoding/json and, for a body
// that is not well-formed, that the answer is malformed_json and nothing
// else. It reports whether the body is well-formed.
func checkWellFormed(t *testing.T, body []byte) bool {
	t.Helper()
	err := wellFormed(body)
	std := utf8.Valid(body) && json.Valid(body)
	if (err == nil) != std {
		t.Fatalf("wellFormed %v, encoding/json valid %v: %q", err, std, body)
	}
	if err != nil {
		if err.Code != ledgerd.CodeMalformedJSON || len(err.Fields) != 0 || status(err.Code) != http.StatusBadRequest {
			t.Fatalf("malformed body answered %+v", err)
		}
		return false
	}
	return true
}

// stdDecode reads body with encoding/json (numbers as json.Number).
func stdDecode(t *testing.T, body []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("encoding/json cannot read an accepted body %q: %v", body, err)
	}
	return v
}

// present returns m[k] with null meaning absent.
func present(m map[string]any, k string) (any, bool) {
	v, ok := m[k]
	return v, ok && v != nil
}

func checkMetadata(t *testing.T, got map[string]string, std any) {
	t.Helper()
	if len(got) > ledgerd.MaxMetadataKeys {
		t.Fatalf("%d metadata keys accepted", len(got))
	}
	for k, v := range got {
		if k == "" || len(k) > ledgerd.MaxMetadataKeyLen || len(v) > ledgerd.MaxMetadataValueLen ||
			!utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			t.Fatalf("metadata %q: %q accepted", k, v)
		}
	}
	m, _ := std.(map[string]any)
	if len(m) != len(got) {
		t.Fatalf("metadata %v, encoding/json reads %v", got, std)
	}
	for k, v := range m {
		if s, ok := v.(string); !ok || got[k] != s {
			t.Fatalf("metadata %q: %q, encoding/json reads %v", k, got[k], v)
		}
	}
}

// checkTransaction checks an accepted transaction request against docs/api.md
// and against encoding/json's reading of the same bytes.
func checkTransaction(t *testing.T, req *ledgerd.TransactionRequest, key string, batchItem bool, std any) {
	t.Helper()
	if n := len(req.Postings); n < 1 || n > ledgerd.MaxPostings {
		t.Fatalf("%d postings accepted", n)
	}
	for i, p := range req.Postings {
		if p.Amount <= 0 {
			t.Fatalf("posting %d: amount %d accepted", i, p.Amount)
		}
		if !ledgerd.ValidAccountID(p.Source) || !ledgerd.ValidAccountID(p.Destination) || p.Source == p.Destination {
			t.Fatalf("posting %d: %q → %q accepted", i, p.Source, p.Destination)
		}
		if !ledgerd.ValidAsset(p.Asset) {
			t.Fatalf("posting %d: asset %q accepted", i, p.Asset)
		}
	}
	if utf8.RuneCountInString(req.Reference) > ledgerd.MaxReferenceLen || strings.ContainsRune(req.Reference, 0) || !utf8.ValidString(req.Reference) {
		t.Fatalf("reference %q accepted", req.Reference)
	}
	if req.PendingTimeout != 0 && (!req.Pending || req.PendingTimeout < 1 || req.PendingTimeout > ledgerd.MaxPendingTimeout) {
		t.Fatalf("pending %v, timeout %d accepted", req.Pending, req.PendingTimeout)
	}
	if batchItem && key != "" && !ledgerd.ValidIdempotencyKey(key) {
		t.Fatalf("idempotency_key %q accepted", key)
	}

	m, ok := std.(map[string]any)
	if !ok {
		t.Fatalf("accepted a body that is not an object: %v", std)
	}
	for k := range m {
		switch k {
		case "postings", "metadata", "reference", "pending", "pending_timeout_seconds":
		case "idempotency_key":
			if !batchItem {
				t.Fatalf("idempotency_key accepted outside a batch")
			}
		default:
			t.Fatalf("unknown member %q accepted", k)
		}
	}
	ps, _ := m["postings"].([]any)
	if len(ps) != len(req.Postings) {
		t.Fatalf("%d postings decoded, encoding/json reads %d", len(req.Postings), len(ps))
	}
	for i, sp := range ps {
		pm, _ := sp.(map[string]any)
		p := req.Postings[i]
		if len(pm) != 4 || pm["source"] != p.Source || pm["destination"] != p.Destination || pm["asset"] != p.Asset ||
			pm["amount"] != json.Number(strconv.FormatInt(p.Amount, 10)) {
			t.Fatalf("posting %d decoded as %+v, encoding/json reads %v", i, p, pm)
		}
	}
	md, _ := present(m, "metadata")
	checkMetadata(t, req.Metadata, md)
	if ref, _ := present(m, "reference"); (ref == nil && req.Reference != "") || (ref != nil && ref != req.Reference) {
		t.Fatalf("reference %q, encoding/json reads %v", req.Reference, ref)
	}
	if pend, _ := present(m, "pending"); (pend == true) != req.Pending {
		t.Fatalf("pending %v, encoding/json reads %v", req.Pending, pend)
	}
	if to, _ := present(m, "pending_timeout_seconds"); (to == nil && req.PendingTimeout != 0) ||
		(to != nil && to != json.Number(strconv.FormatInt(req.PendingTimeout, 10))) {
		t.Fatalf("pending_timeout_seconds %d, encoding/json reads %v", req.PendingTimeout, to)
	}
	if k, _ := present(m, "idempotency_key"); (k == nil && key != "") || (k != nil && k != key) {
		t.Fatalf("idempotency_key %q, encoding/json reads %v", key, k)
	}
}

type txDecoded struct {
	req ledgerd.TransactionRequest
	key string
	err *ledgerd.Error
}

func decodeTx(body []byte, batchItem bool) txDecoded {
	var out txDecoded
	var v ledgerd.Validation
	var key *string
	if batchItem {
		key = &out.key
	}
	decodeTransaction(jx.DecodeBytes(body), &v, "", &out.req, key)
	out.err = v.Err()
	return out
}

func checkFieldErrors(t *testing.T, err *ledgerd.Error) {
	t.Helper()
	if err.Code != ledgerd.CodeValidationFailed || len(err.Fields) == 0 {
		t.Fatalf("decode error %+v", err)
	}
	for _, f := range err.Fields {
		// A member may be named "": then the field is "" too.
		if f.Message == "" || (f.Field == "" && f.Message != "unknown field" && f.Message != "duplicate field") {
			t.Fatalf("field error without field or message: %+v", err.Fields)
		}
	}
}

func FuzzDecodeTransaction(f *testing.F) {
	addSeeds(f, txSeeds, false)
	addSeeds(f, txSeeds, true)
	f.Fuzz(func(t *testing.T, body []byte, batchItem bool) {
		if !checkWellFormed(t, body) {
			return
		}
		a := decodeTx(body, batchItem)
		b := decodeTx(body, batchItem)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two decodes differ:\n%+v\n%+v", a, b)
		}
		if a.err != nil {
			checkFieldErrors(t, a.err)
			return
		}
		if hasLoneSurrogate(body) {
			t.Fatalf("a lone surrogate accepted: %q", body)
		}
		checkTransaction(t, &a.req, a.key, batchItem, stdDecode(t, body))
	})
}

type accountDecoded struct {
	acct ledgerd.NewAccount
	err  *ledgerd.Error
}

func decodeAcct(body []byte) accountDecoded {
	var out accountDecoded
	var v ledgerd.Validation
	decodeAccount(jx.DecodeBytes(body), &v, "", &out.acct)
	out.err = v.Err()
	return out
}

func FuzzDecodeAccount(f *testing.F) {
	addSeeds(f, accountSeeds)
	f.Fuzz(func(t *testing.T, body []byte) {
		if !checkWellFormed(t, body) {
			return
		}
		a, b := decodeAcct(body), decodeAcct(body)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two decodes differ:\n%+v\n%+v", a, b)
		}
		if a.err != nil {
			checkFieldErrors(t, a.err)
			return
		}
		if hasLoneSurrogate(body) {
			t.Fatalf("a lone surrogate accepted: %q", body)
		}
		na := a.acct
		if !ledgerd.ValidAccountID(na.ID) || !ledgerd.ValidAsset(na.Asset) {
			t.Fatalf("account %q / %q accepted", na.ID, na.Asset)
		}
		m, ok := stdDecode(t, body).(map[string]any)
		if !ok {
			t.Fatalf("accepted a body that is not an object")
		}
		for k := range m {
			switch k {
			case "id", "asset", "min_balance", "metadata":
			default:
				t.Fatalf("unknown member %q accepted", k)
			}
		}
		if m["id"] != na.ID || m["asset"] != na.Asset {
			t.Fatalf("decoded %+v, encoding/json reads %v", na, m)
		}
		// min_balance: absent is 0, null is unbounded, else the integer.
		switch mb, has := m["min_balance"]; {
		case !has:
			if na.MinBalance == nil || *na.MinBalance != 0 {
				t.Fatalf("absent min_balance decoded as %v", na.MinBalance)
			}
		case mb == nil:
			if na.MinBalance != nil {
				t.Fatalf("null min_balance decoded as %d", *na.MinBalance)
			}
		default:
			if na.MinBalance == nil || mb != json.Number(strconv.FormatInt(*na.MinBalance, 10)) {
				t.Fatalf("min_balance %v decoded as %v", mb, na.MinBalance)
			}
		}
		md, _ := present(m, "metadata")
		checkMetadata(t, na.Metadata, md)
	})
}

// fakeStore commits every item in memory and checks, as the real store
// would rely on, that only requests docs/api.md allows reach it.
type fakeStore struct {
	mu       sync.Mutex
	calls    int
	problems []string
}

func (s *fakeStore) WriteBatch(_ context.Context, _ int64, units []*ledgerd.WriteUnit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, u := range units {
		for i, it := range u.Items {
			var v ledgerd.Validation
			if it.Request == nil {
				s.problems = append(s.problems, fmt.Sprintf("item %d without a request", i))
				continue
			}
			it.Request.Validate(&v, "")
			if err := v.Err(); err != nil {
				s.problems = append(s.problems, fmt.Sprintf("item %d reached the writer invalid: %v", i, err))
			}
			for _, p := range it.Request.Postings {
				if p.Amount <= 0 {
					s.problems = append(s.problems, fmt.Sprintf("item %d reached the writer with amount %d", i, p.Amount))
				}
			}
			if (it.IdempotencyKey != "") != (len(it.RequestHash) > 0) {
				s.problems = append(s.problems, fmt.Sprintf("item %d: key %q with hash %x", i, it.IdempotencyKey, it.RequestHash))
			}
			it.Result = &ledgerd.Transaction{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), Sequence: int64(i + 1),
				Status: ledgerd.StatusPosted, Postings: it.Request.Postings, Metadata: it.Request.Metadata,
				Reference: it.Request.Reference, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
			if it.Request.Pending {
				it.Result.Status = ledgerd.StatusPending
			}
		}
	}
	return nil
}

func (s *fakeStore) BatchCommitted(context.Context, error) (bool, bool) {
	return false, false
}

func (s *fakeStore) InsertDeadLetter(context.Context, int64, string, []byte, string) error {
	return nil
}

const fuzzAdminKey = "fuzz-admin-key-0123456789abcdef0123456789"

// fuzzServer is a Server with no database: the bootstrap key needs no key
// lookup, the ledger is in the routing cache, and the writer commits to a
// fakeStore. Only the transaction batch route is safe to call on it.
func fuzzServer(f *testing.F, maxItems int) (*Server, *fakeStore) {
	store := &fakeStore{}
	w := batch.New(store, batch.Config{}, slog.New(slog.DiscardHandler), nil, func(*ledgerd.TransactionRequest) []byte { return []byte("{}") })
	f.Cleanup(w.Close)
	s := NewServer(nil, w, Config{AdminKey: fuzzAdminKey, BatchMaxItems: maxItems})
	s.ledgers.Store("fuzz", &ledgerd.Ledger{ID: 1, Name: "fuzz"})
	return s, store
}

func postFuzzBatch(s *Server, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/v1/ledgers/fuzz/transactions/batch", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fuzzAdminKey)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

var batchSeeds = []string{
	`{"atomic":false,"transactions":[` + txSeeds[0] + `,` + txSeeds[5] + `,` + txSeeds[3] + `]}`,
	`{"atomic":true,"transactions":[` + txSeeds[0] + `,` + txSeeds[1] + `]}`,
	`{"atomic":true,"transactions":[` + txSeeds[0] + `,` + txSeeds[6] + `]}`,
	`{"transactions":[` + txSeeds[2] + `],"atomic":null}`,
	`{"transactions":[` + txSeeds[0] + `,{"postings":[{"source":"a","destination":"b","amount":1,"asset":"USD"}],"idempotency_key":"k\udfff"}]}`,
	`{"transactions":[` + txSeeds[3] + `,` + txSeeds[3] + `]}`,
	`{"transactions":[1,"x",null,[]]}`,
	`{"transactions":[]}`, `{"transactions":null}`, `{}`, `{"atomic":1}`, `{"transactions":{}}`,
	`{"transactions":[],"transactions":[]}`, `{"transactions":[` + txSeeds[0] + `],"x":1}`,
	`{"transactions":[` + txSeeds[0] + `,` + txSeeds[0] + `,` + txSeeds[0] + `,` + txSeeds[0] + `,` + txSeeds[0] + `]}`,
	`{"transactions":[`, `[]`, ``, "{\"transactions\":[\"\xff\"]}",
}

func FuzzDecodeBatch(f *testing.F) {
	const maxItems = 4
	s, store := fuzzServer(f, maxItems)
	addSeeds(f, batchSeeds)
	f.Fuzz(func(t *testing.T, body []byte) {
		store.mu.Lock()
		store.calls, store.problems = 0, nil
		store.mu.Unlock()
		rec := postFuzzBatch(s, body)
		store.mu.Lock()
		calls, problems := store.calls, store.problems
		store.mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("%q: %s", body, strings.Join(problems, "; "))
		}
		var p map[string]any
		d := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		d.UseNumber()
		if err := d.Decode(&p); err != nil {
			t.Fatalf("%q: answer %d is not JSON: %q", body, rec.Code, rec.Body.Bytes())
		}
		wellFormedBody := utf8.Valid(body) && json.Valid(body)
		switch rec.Code {
		case http.StatusBadRequest:
			if wellFormedBody || p["code"] != "malformed_json" || p["errors"] != nil {
				t.Fatalf("%q: 400 %s", body, rec.Body.Bytes())
			}
			if calls != 0 {
				t.Fatalf("a malformed batch reached the writer")
			}
			return
		case http.StatusUnprocessableEntity:
			if !wellFormedBody || p["code"] != "validation_failed" {
				t.Fatalf("%q: 422 %s", body, rec.Body.Bytes())
			}
			if errs, _ := p["errors"].([]any); len(errs) == 0 {
				t.Fatalf("%q: 422 without field errors: %s", body, rec.Body.Bytes())
			}
			if calls != 0 {
				t.Fatalf("%q: a rejected batch reached the writer", body)
			}
		case http.StatusOK:
			if !wellFormedBody {
				t.Fatalf("%q: a malformed body was accepted", body)
			}
			std, _ := stdDecode(t, body).(map[string]any)
			items, _ := std["transactions"].([]any)
			res, _ := p["results"].([]any)
			if len(items) == 0 || len(items) > maxItems || len(res) != len(items) {
				t.Fatalf("%q: %d items, %d results (limit %d)", body, len(items), len(res), maxItems)
			}
			created := 0
			for i, r := range res {
				rm, _ := r.(map[string]any)
				switch rm["status"] {
				case json.Number("201"):
					created++
					// Re-decode the item alone: it must be a valid request.
					raw, _ := json.Marshal(items[i])
					one := decodeTx(raw, true)
					if one.err != nil {
						t.Fatalf("%q: item %d was posted but alone it is %v", body, i, one.err)
					}
					checkTransaction(t, &one.req, one.key, true, items[i])
				case json.Number("422"):
					e, _ := rm["error"].(map[string]any)
					if e["code"] != "validation_failed" {
						t.Fatalf("%q: item %d: %v", body, i, rm)
					}
				default:
					t.Fatalf("%q: item %d: %v", body, i, rm)
				}
			}
			if (created > 0) != (calls > 0) {
				t.Fatalf("%q: %d items created, %d writer calls", body, created, calls)
			}
			if std["atomic"] == true && created != len(items) {
				t.Fatalf("%q: an atomic batch partly succeeded", body)
			}
			if created == len(items) && hasLoneSurrogate(body) {
				t.Fatalf("%q: every item posted despite a lone surrogate", body)
			}
		default:
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body.Bytes())
		}
		// Deterministic: the same body gets the same answer.
		again := postFuzzBatch(s, body)
		if again.Code != rec.Code || !bytes.Equal(again.Body.Bytes(), rec.Body.Bytes()) {
			t.Fatalf("%q: answers differ:\n%d %s\n%d %s", body, rec.Code, rec.Body.Bytes(), again.Code, again.Body.Bytes())
		}
	})
}
