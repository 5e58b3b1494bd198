package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// evPage is one page of GET …/events.
type evPage struct {
	Data []struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Ledger    string          `json:"ledger"`
		CreatedAt string          `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	} `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func getEvents(c client, ledger, key, query string) evPage {
	c.t.Helper()
	r := c.do("GET", "/v1/ledgers/"+ledger+"/events"+query, key, nil).Expect(c.t, 200)
	var p evPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		c.t.Fatalf("%v: %s", err, r.Body)
	}
	for _, ev := range p.Data {
		if ev.Ledger != ledger || !strings.HasPrefix(ev.ID, "evt_") || !timeRE.MatchString(ev.CreatedAt) || !json.Valid(ev.Data) {
			c.t.Fatalf("event %+v", ev)
		}
	}
	return p
}

// allEvents pages through the ledger's events with the given filter,
// following next_cursor, and returns "type id" per event.
func allEvents(c client, ledger, key string, limit int, types ...string) []string {
	c.t.Helper()
	var out []string
	after := ""
	for range 1000 {
		q := url.Values{"limit": {fmt.Sprint(limit)}, "type": types}
		if after != "" {
			q.Set("after", after)
		}
		p := getEvents(c, ledger, key, "?"+q.Encode())
		if len(p.Data) > limit {
			c.t.Fatalf("%d events for limit %d", len(p.Data), limit)
		}
		for _, ev := range p.Data {
			out = append(out, ev.Type+" "+ev.ID)
		}
		if p.NextCursor == nil {
			return out
		}
		after = *p.NextCursor
	}
	c.t.Fatal("paging does not end")
	return nil
}

// TestEvents: every kind of change is listed once, in commit order, each
// as it was committed; type filters, after= and limits page through the
// same list; bad parameters are 422 naming them.
func TestEvents(t *testing.T) {
	c := setup(t, ledgertest.Options{})
	l := c.e.Ledger("ev")
	other := c.e.Ledger("other")
	read := c.e.Key(l, "read")
	otherRead := c.e.Key(other, "read")
	p := "/v1/ledgers/" + l

	c.do("POST", p+"/accounts", admin, map[string]any{"id": "world", "asset": "USD", "min_balance": nil}).Expect(t, 201)
	c.do("POST", p+"/accounts/batch", admin, map[string]any{"accounts": []any{
		map[string]any{"id": "a", "asset": "USD"}, map[string]any{"id": "b", "asset": "USD", "metadata": map[string]string{"k": "v"}},
		map[string]any{"id": "a", "asset": "USD"}}}).Expect(t, 200)
	// A replayed creation is no second event.
	for range 2 {
		c.do("POST", p+"/accounts", admin, map[string]any{"id": "c", "asset": "USD"}, "Idempotency-Key", "acc-c")
	}
	tx := func(path string, body any) string {
		t.Helper()
		r := c.do("POST", p+path, admin, body)
		if r.Status != 200 && r.Status != 201 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		return r.JSON()["id"].(string)
	}
	move := func(from, to string, amount int, extra ...any) map[string]any {
		m := map[string]any{"postings": []any{map[string]any{"source": from, "destination": to, "amount": amount, "asset": "USD"}}}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	posted := tx("/transactions", move("world", "a", 1000))
	hold := tx("/transactions", move("a", "b", 100, "pending", true))
	capture := tx("/transactions/"+hold+"/post", map[string]any{})
	hold2 := tx("/transactions", move("a", "b", 50, "pending", true))
	void := tx("/transactions/"+hold2+"/void", map[string]any{})
	reversal := tx("/transactions/"+posted+"/reverse", map[string]any{"force": true})
	c.do("POST", p+"/accounts", admin, map[string]any{"id": "d", "asset": "USD"}).Expect(t, 201)

	full := getEvents(c, l, read, "")
	var got []string
	for _, ev := range full.Data {
		got = append(got, ev.Type)
	}
	want := []string{"account.created", "account.created", "account.created", "account.created",
		"transaction.posted", "transaction.pending", "transaction.captured", "transaction.pending",
		"transaction.voided", "transaction.reversed", "account.created"}
	if fmt.Sprint(got) != fmt.Sprint(want) || full.NextCursor != nil {
		t.Fatalf("events %v next %v\nwant %v", got, full.NextCursor, want)
	}
	for i, id := range []string{posted, hold, capture, hold2, void, reversal} {
		ev := full.Data[4+i]
		if ev.ID != "evt_"+id {
			t.Fatalf("event %d: id %s, transaction %s", 4+i, ev.ID, id)
		}
		var d map[string]any
		_ = json.Unmarshal(ev.Data, &d)
		if d["id"] != id || d["sequence"] != float64(i+1) || d["resolved_by"] != nil || d["reversed_by"] != nil {
			t.Fatalf("event %d data %s", 4+i, ev.Data)
		}
	}
	// The hold's event shows it as it was committed, not as it is now.
	if !strings.Contains(string(full.Data[5].Data), `"status":"pending"`) {
		t.Fatalf("hold's event %s", full.Data[5].Data)
	}
	var acc map[string]any
	_ = json.Unmarshal(full.Data[2].Data, &acc)
	if acc["id"] != "b" || acc["metadata"].(map[string]any)["k"] != "v" || acc["version"] != float64(0) {
		t.Fatalf("account event %s", full.Data[2].Data)
	}
	if a := c.do("GET", p+"/accounts/b", read, nil).Expect(t, 200).JSON(); fmt.Sprint(a["created_at"]) != full.Data[2].CreatedAt {
		t.Fatalf("account created_at %v, event %s", a["created_at"], full.Data[2].CreatedAt)
	}

	all := allEvents(c, l, read, 1000)
	for _, limit := range []int{1, 2, 3} {
		if pages := allEvents(c, l, read, limit); fmt.Sprint(pages) != fmt.Sprint(all) {
			t.Fatalf("limit %d: %v\nwant %v", limit, pages, all)
		}
	}
	for _, types := range [][]string{{"transaction.pending"}, {"account.created", "transaction.voided"}, {"account.frozen"},
		{"transaction.captured", "transaction.captured"}} {
		var want []string
		for _, s := range all {
			if slices.Contains(types, strings.Fields(s)[0]) {
				want = append(want, s)
			}
		}
		for _, limit := range []int{1, 100} {
			if got := allEvents(c, l, read, limit, types...); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("types %v limit %d: %v\nwant %v", types, limit, got, want)
			}
		}
	}
	// after is exclusive, from an event of either kind.
	for i, ev := range full.Data {
		rest := getEvents(c, l, read, "?after="+ev.ID)
		if len(rest.Data) != len(full.Data)-i-1 || (len(rest.Data) > 0 && rest.Data[0].ID != full.Data[i+1].ID) {
			t.Fatalf("after event %d: %d events", i, len(rest.Data))
		}
	}
	if p := getEvents(c, l, read, "?after="); len(p.Data) != len(full.Data) {
		t.Fatalf("empty after: %d events", len(p.Data))
	}

	// The other ledger has its own events; neither sees the other's.
	c.do("POST", "/v1/ledgers/"+other+"/accounts", admin, map[string]any{"id": "x", "asset": "USD"}).Expect(t, 201)
	otherEv := getEvents(c, other, otherRead, "")
	if len(otherEv.Data) != 1 {
		t.Fatalf("other ledger: %+v", otherEv)
	}
	for _, tc := range []struct{ query, field string }{
		{"?type=transaction.bogus", "type"},
		{"?type=", "type"},
		{"?type=Account.Created", "type"},
		{"?type=account.created&type=nope", "type"},
		{"?after=" + otherEv.Data[0].ID, "after"},
		{"?after=evt_" + uuid.NewString(), "after"},
		{"?after=" + posted, "after"},
		{"?after=garbage", "after"},
		{"?after=evt_%00", "after"},
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?limit=x", "limit"},
		{"?cursor=" + otherEv.Data[0].ID, "cursor"}, // events page with after
		{"?typo=1", "typo"},
	} {
		r := c.do("GET", p+"/events"+tc.query, read, nil).Expect(t, 422, "validation_failed")
		if !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
			t.Fatalf("%s: %s", tc.query, r.Body)
		}
	}
	c.do("GET", p+"/events", "", nil).Expect(t, 401, "unauthorized")
	c.do("GET", p+"/events", otherRead, nil).Expect(t, 404, "not_found")
	c.do("GET", p+"/events", c.e.Key(l, "write"), nil).Expect(t, 200)
}
