package httpapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("acc")
	write := c.key(l, "write")

	for _, tc := range []struct {
		name string
		body string
		min  string // min_balance as the answer shows it
	}{
		{"absent min_balance is 0", `{"id":"users:alice:wallet","asset":"USD"}`, "0"},
		{"null min_balance is unbounded", `{"id":"world","asset":"USD","min_balance":null}`, "null"},
		{"negative min_balance (overdraft)", `{"id":"od","asset":"USD","min_balance":-500}`, "-500"},
		{"positive min_balance", `{"id":"reserve","asset":"USD","min_balance":100}`, "100"},
		{"null metadata is absent", `{"id":"m0","asset":"USD","metadata":null}`, "0"},
		{"longest id and asset", `{"id":"` + "A" + strings.Repeat("z", 127) + `","asset":"` + "X" + strings.Repeat("_", 15) + `"}`, "0"},
		{"all id characters", `{"id":"a_:.@-Z9","asset":"EUR"}`, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			r := c.expect(201, "", "POST", accountsPath(l), write, tc.body)
			m := r.JSON()
			requireKeys(t, "account", m, "id", "asset", "min_balance", "status", "metadata", "balance", "version", "created_at")
			requireKeys(t, "balance", m["balance"].(map[string]any), "posted", "pending_debits", "pending_credits", "available")
			if compact(t, m["min_balance"]) != tc.min {
				t.Fatalf("min_balance %v, want %s", m["min_balance"], tc.min)
			}
			if compact(t, m["balance"]) != `{"available":0,"pending_credits":0,"pending_debits":0,"posted":0}` ||
				num(t, m["version"]) != 0 || compact(t, m["metadata"]) != "{}" {
				t.Fatalf("new account: %s", r.Body)
			}
			requireTime(t, "created_at", m["created_at"])
			got := c.getAccount(l, str(m, "id"))
			if compact(t, got) != compact(t, m) {
				t.Fatalf("GET %v, POST answered %v", got, m)
			}
		})
	}

	m := c.expect(201, "", "POST", accountsPath(l), write,
		map[string]any{"id": "meta", "asset": "USD", "metadata": map[string]any{"owner": "alice", "note": "é ✓ \"q\""}}).JSON()
	if compact(t, m["metadata"]) != `{"note":"é ✓ \"q\"","owner":"alice"}` {
		t.Fatalf("metadata %v", m["metadata"])
	}

	before := c.snapshot(l, "meta")
	r := c.expect(409, "duplicate_account", "POST", accountsPath(l), write, map[string]any{"id": "meta", "asset": "EUR"})
	if str(r.JSON(), "detail") == "" {
		t.Fatalf("409 without detail: %s", r.Body)
	}
	c.unchanged(l, before)
	// Ids are case-sensitive.
	c.expect(201, "", "POST", accountsPath(l), write, map[string]any{"id": "META", "asset": "USD"})
	c.expect(404, "not_found", "GET", accountsPath(l)+"/Meta", write, nil)
	c.expect(404, "not_found", "GET", accountsPath(l)+"/no-such", write, nil)
	c.expect(404, "not_found", "GET", accountsPath(l)+"/"+url.PathEscape("bad id%"), write, nil)
	c.expect(404, "not_found", "GET", accountsPath(l)+"/"+strings.Repeat("a", 129), write, nil)
}

func TestCreateAccountValidation(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("accval")
	manyKeys := map[string]any{}
	for i := 0; i < 65; i++ {
		manyKeys[fmt.Sprintf("k%02d", i)] = "v"
	}
	okKeys := map[string]any{}
	for i := 0; i < 64; i++ {
		okKeys[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 512)
	}
	okKeys[strings.Repeat("k", 64)] = "v"
	delete(okKeys, "k00")

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"missing id", map[string]any{"asset": "USD"}, "id"},
		{"null id", map[string]any{"id": nil, "asset": "USD"}, "id"},
		{"empty id", map[string]any{"id": "", "asset": "USD"}, "id"},
		{"id starts with underscore", map[string]any{"id": "_a", "asset": "USD"}, "id"},
		{"id with space", map[string]any{"id": "a b", "asset": "USD"}, "id"},
		{"id with slash", map[string]any{"id": "a/b", "asset": "USD"}, "id"},
		{"id with percent", map[string]any{"id": "a%b", "asset": "USD"}, "id"},
		{"id non-ASCII", map[string]any{"id": "café", "asset": "USD"}, "id"},
		{"id too long", map[string]any{"id": strings.Repeat("a", 129), "asset": "USD"}, "id"},
		{"id not a string", map[string]any{"id": 12, "asset": "USD"}, "id"},
		{"missing asset", map[string]any{"id": "a"}, "asset"},
		{"lowercase asset", map[string]any{"id": "a", "asset": "usd"}, "asset"},
		{"asset starts with digit", map[string]any{"id": "a", "asset": "1USD"}, "asset"},
		{"asset too long", map[string]any{"id": "a", "asset": "A" + strings.Repeat("B", 16)}, "asset"},
		{"asset with dash", map[string]any{"id": "a", "asset": "US-D"}, "asset"},
		{"asset not a string", map[string]any{"id": "a", "asset": true}, "asset"},
		{"min_balance string", map[string]any{"id": "a", "asset": "USD", "min_balance": "0"}, "min_balance"},
		{"min_balance float", `{"id":"a","asset":"USD","min_balance":1.5}`, "min_balance"},
		{"min_balance exponent", `{"id":"a","asset":"USD","min_balance":1e3}`, "min_balance"},
		{"min_balance 2^63", `{"id":"a","asset":"USD","min_balance":9223372036854775808}`, "min_balance"},
		{"min_balance below -2^63", `{"id":"a","asset":"USD","min_balance":-9223372036854775809}`, "min_balance"},
		{"metadata not an object", map[string]any{"id": "a", "asset": "USD", "metadata": "x"}, "metadata"},
		{"metadata too many keys", map[string]any{"id": "a", "asset": "USD", "metadata": manyKeys}, "metadata"},
		{"metadata key too long", map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{strings.Repeat("k", 65): "v"}}, "metadata." + strings.Repeat("k", 16)},
		{"metadata value too long", map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{"k": strings.Repeat("v", 513)}}, "metadata.k"},
		{"metadata value number", map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{"k": 1}}, "metadata.k"},
		{"metadata value null", map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{"k": nil}}, "metadata.k"},
		{"metadata value object", map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{"k": map[string]any{}}}, "metadata.k"},
		{"metadata duplicate key", `{"id":"a","asset":"USD","metadata":{"k":"1","k":"2"}}`, "metadata.k"},
		{"unknown member", map[string]any{"id": "a", "asset": "USD", "balance": 100}, "balance"},
		{"duplicate member", `{"id":"a","asset":"USD","id":"b"}`, "id"},
		{"not an object", `[{"id":"a","asset":"USD"}]`, "body"},
		{"a string", `"a"`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, "a", "b")
			requireField(t, c.do("POST", accountsPath(l), admin, tc.body), tc.field)
			c.unchanged(l, before)
		})
	}
	// Every problem at once.
	r := c.do("POST", accountsPath(l), admin, map[string]any{"id": "", "asset": "x", "min_balance": "1", "zzz": 1})
	for _, f := range []string{"id", "asset", "min_balance", "zzz"} {
		requireField(t, r, f)
	}
	// The limits themselves are fine.
	c.expect(201, "", "POST", accountsPath(l), admin, map[string]any{"id": "limits", "asset": "USD", "metadata": okKeys})
	c.expect(201, "", "POST", accountsPath(l), admin, `{"id":"minmax","asset":"USD","min_balance":-9223372036854775808}`)
	c.expect(201, "", "POST", accountsPath(l), admin, `{"id":"maxmin","asset":"USD","min_balance":9223372036854775807}`)
}

func TestPatchAccount(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("patch")
	write, adm := c.key(l, "write"), c.key(l, "admin")
	c.account(l, "world", "USD", nil)
	c.expect(201, "", "POST", accountsPath(l), write, map[string]any{"id": "a", "asset": "USD", "metadata": map[string]any{"keep": "1", "drop": "2", "change": "3"}})
	c.fund(l, "world", "a", 40, "USD")
	path := accountsPath(l) + "/a"

	r := c.expect(200, "", "PATCH", path, write, map[string]any{"metadata": map[string]any{"drop": nil, "change": "x", "new": "y", "absent": nil}})
	m := r.JSON()
	requireKeys(t, "patched account", m, "id", "asset", "min_balance", "status", "metadata", "balance", "version", "created_at")
	if compact(t, m["metadata"]) != `{"change":"x","keep":"1","new":"y"}` {
		t.Fatalf("merged metadata %v", m["metadata"])
	}
	if num(t, m["balance"].(map[string]any)["posted"]) != 40 || num(t, m["version"]) != 1 || num(t, m["min_balance"]) != 0 {
		t.Fatalf("PATCH changed more than metadata: %s", r.Body)
	}
	if compact(t, c.getAccount(l, "a")) != compact(t, m) {
		t.Fatalf("GET differs from the PATCH answer")
	}
	// An empty patch and a null metadata change nothing.
	before := c.snapshot(l, "a")
	c.expect(200, "", "PATCH", path, write, `{}`)
	c.expect(200, "", "PATCH", path, write, `{"metadata":null}`)
	c.expect(200, "", "PATCH", path, write, `{"metadata":{}}`)
	c.unchanged(l, before)

	// Rejections change nothing.
	many := map[string]any{}
	for i := 0; i < 62; i++ {
		many[fmt.Sprintf("n%02d", i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		key    string
		body   any
		status int
		code   string
		field  string
	}{
		{"min_balance by write", write, map[string]any{"min_balance": 10}, 403, "forbidden", ""},
		{"unknown member", write, map[string]any{"asset": "EUR"}, 422, "validation_failed", "asset"},
		{"id is not patchable", write, map[string]any{"id": "b"}, 422, "validation_failed", "id"},
		{"metadata not object", write, map[string]any{"metadata": []string{"x"}}, 422, "validation_failed", "metadata"},
		{"metadata value number", write, map[string]any{"metadata": map[string]any{"k": 5}}, 422, "validation_failed", "metadata.k"},
		{"metadata value too long", write, map[string]any{"metadata": map[string]any{"k": strings.Repeat("v", 513)}}, 422, "validation_failed", "metadata.k"},
		{"metadata key too long", write, map[string]any{"metadata": map[string]any{strings.Repeat("k", 65): "v"}}, 422, "validation_failed", ""},
		{"merged metadata too many keys", write, map[string]any{"metadata": many}, 422, "validation_failed", "metadata"},
		{"min_balance float", adm, `{"min_balance":1.5}`, 422, "validation_failed", "min_balance"},
		{"min_balance string", adm, `{"min_balance":"5"}`, 422, "validation_failed", "min_balance"},
		{"duplicate member", adm, `{"min_balance":1,"min_balance":2}`, 422, "validation_failed", "min_balance"},
		{"malformed", write, `{"metadata":{"k":"v"}`, 400, "malformed_json", ""},
		{"not an object", write, `[]`, 422, "validation_failed", "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			before := c.snapshot(l, "a")
			r := c.expect(tc.status, tc.code, "PATCH", path, tc.key, tc.body)
			if tc.field != "" {
				requireField(t, r, tc.field)
			}
			c.unchanged(l, before)
		})
	}

	// admin: min_balance to a number, to null (unbounded), back to 0.
	m = c.expect(200, "", "PATCH", path, adm, map[string]any{"min_balance": -100}).JSON()
	if num(t, m["min_balance"]) != -100 || compact(t, m["metadata"]) != `{"change":"x","keep":"1","new":"y"}` {
		t.Fatalf("min_balance patch: %v", m)
	}
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("a", "world", 120, "USD"))) // 40 → -80, above -100
	c.expect(422, "insufficient_funds", "POST", txPath(l), admin, tx(posting("a", "world", 21, "USD")))
	m = c.expect(200, "", "PATCH", path, adm, `{"min_balance":null}`).JSON()
	if m["min_balance"] != nil {
		t.Fatalf("min_balance null: %v", m)
	}
	c.expect(201, "", "POST", txPath(l), admin, tx(posting("a", "world", 1000, "USD")))
	m = c.expect(200, "", "PATCH", path, adm, `{"min_balance":0}`).JSON()
	if compact(t, m["min_balance"]) != "0" {
		t.Fatalf("min_balance 0: %v", m)
	}

	// Resource 404 comes after 400 and 422.
	missing := accountsPath(l) + "/missing"
	c.expect(404, "not_found", "PATCH", missing, write, map[string]any{"metadata": map[string]any{"k": "v"}})
	c.expect(404, "not_found", "PATCH", accountsPath(l)+"/bad%20id", write, map[string]any{"metadata": map[string]any{"k": "v"}})
	c.expect(422, "validation_failed", "PATCH", missing, write, map[string]any{"nope": 1})
	c.expect(400, "malformed_json", "PATCH", missing, write, `{`)
	c.expect(404, "not_found", "GET", missing, admin, nil)
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("list")
	read := c.key(l, "read")
	// Ids chosen so that bytewise ("C") order differs from any linguistic
	// collation, and so that LIKE-style wildcards would over-match.
	all := []string{"a-b", "a.b", "a0", "a:b", "a@b", "aA", "a_b", "aa", "aXb", "B", "b", "Z9", "9",
		"user_1", "userX1", "user.1", "users:alice", "User_1", "user_10", "user__", "u", "user"}
	var batch []any
	for i, id := range all {
		md := map[string]any{"parity": []string{"even", "odd"}[i%2]}
		if strings.HasPrefix(id, "user") {
			md["kind"] = "user"
		}
		batch = append(batch, map[string]any{"id": id, "asset": "USD", "metadata": md})
	}
	c.expect(200, "", "POST", accountsPath(l)+"/batch", admin, map[string]any{"accounts": batch})
	sorted := slices.Clone(all)
	sort.Strings(sorted) // bytewise

	r := c.expect(200, "", "GET", accountsPath(l), read, nil)
	m := r.JSON()
	requireKeys(t, "list", m, "data", "next_cursor")
	if m["next_cursor"] != nil {
		t.Fatalf("one page has a next_cursor: %v", m["next_cursor"])
	}
	var first []map[string]any
	for _, d := range m["data"].([]any) {
		first = append(first, d.(map[string]any))
	}
	if got := ids(first); !slices.Equal(got, sorted) {
		t.Fatalf("order %q, want bytewise %q", got, sorted)
	}
	requireKeys(t, "listed account", first[0], "id", "asset", "min_balance", "status", "metadata", "balance", "version", "created_at")

	// Keyset pagination: every page size walks everything exactly once.
	for _, limit := range []int{1, 2, 3, 7, len(all) - 1, len(all), len(all) + 1, 1000} {
		got := ids(c.walk(fmt.Sprintf("%s?limit=%d", accountsPath(l), limit), read))
		if !slices.Equal(got, sorted) {
			t.Fatalf("limit %d walked %q, want %q", limit, got, sorted)
		}
	}

	// Prefixes match literally and bytewise.
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"user", []string{"user", "user.1", "user_1", "user_10", "user__", "userX1", "users:alice"}},
		{"user_", []string{"user_1", "user_10", "user__"}}, // LIKE would add userX1 and user.1
		{"user__", []string{"user__"}},
		{"user%", nil}, // LIKE would match every user
		{"%", nil},     // and everything
		{"_", nil},     //
		{"a_", []string{"a_b"}},
		{"User", []string{"User_1"}}, // case-sensitive
		{"a", []string{"a-b", "a.b", "a0", "a:b", "a@b", "aA", "aXb", "a_b", "aa"}},
		{"users:alice", []string{"users:alice"}},
		{"users:alice:", nil},
		{"zzz", nil},
		{"[a]", nil},
		{"a*", nil},
		{"\\", nil},
	} {
		q := url.Values{"prefix": {tc.prefix}}
		var got []string
		for _, limit := range []string{"2", "1000"} {
			q.Set("limit", limit)
			got = ids(c.walk(accountsPath(l)+"?"+q.Encode(), read))
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("prefix %q (limit %s): %q, want %q", tc.prefix, limit, got, want)
			}
		}
	}

	// metadata[k]=v filters, combined with each other and with prefix.
	for _, tc := range []struct {
		query string
		want  func(i int, id string) bool
	}{
		{"metadata[parity]=odd", func(i int, _ string) bool { return i%2 == 1 }},
		{"metadata[kind]=user", func(_ int, id string) bool { return strings.HasPrefix(id, "user") }},
		{"metadata[kind]=user&metadata[parity]=even", func(i int, id string) bool { return strings.HasPrefix(id, "user") && i%2 == 0 }},
		{"metadata[kind]=user&prefix=user_", func(_ int, id string) bool { return strings.HasPrefix(id, "user_") }},
		{"metadata[kind]=nobody", func(int, string) bool { return false }},
		{"metadata[nokey]=odd", func(int, string) bool { return false }},
	} {
		var want []string
		for i, id := range all {
			if tc.want(i, id) {
				want = append(want, id)
			}
		}
		sort.Strings(want)
		got := ids(c.walk(accountsPath(l)+"?limit=2&"+tc.query, read))
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: %q, want %q", tc.query, got, want)
		}
	}

	// An empty page is an empty array, never null.
	r = c.expect(200, "", "GET", accountsPath(l)+"?prefix=nothing", read, nil)
	if !strings.Contains(string(r.Body), `"data":[]`) || !strings.Contains(string(r.Body), `"next_cursor":null`) {
		t.Fatalf("empty list: %s", r.Body)
	}

	for _, q := range []string{"limit=1001", "limit=0", "limit=-1", "limit=abc", "limit=1.5", "cursor=%21%21", "cursor=not*base64"} {
		requireField(t, c.do("GET", accountsPath(l)+"?"+q, read, nil), strings.SplitN(q, "=", 2)[0])
	}
}

func TestListAccountsDefaultLimit(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("deflimit")
	var batch []any
	for i := 0; i < 101; i++ {
		batch = append(batch, map[string]any{"id": fmt.Sprintf("acct-%03d", i), "asset": "USD"})
	}
	c.expect(200, "", "POST", accountsPath(l)+"/batch", admin, map[string]any{"accounts": batch})
	m := c.expect(200, "", "GET", accountsPath(l), admin, nil).JSON()
	if n := len(m["data"].([]any)); n != 100 || m["next_cursor"] == nil {
		t.Fatalf("default page: %d accounts, next_cursor %v", n, m["next_cursor"])
	}
	m = c.expect(200, "", "GET", accountsPath(l)+"?cursor="+url.QueryEscape(m["next_cursor"].(string)), admin, nil).JSON()
	if d := m["data"].([]any); len(d) != 1 || str(d[0].(map[string]any), "id") != "acct-100" || m["next_cursor"] != nil {
		t.Fatalf("second page: %v", m)
	}
}

func TestAccountBatch(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("accbatch")
	write := c.key(l, "write")
	c.account(l, "exists", "USD", nil)

	body := map[string]any{"accounts": []any{
		map[string]any{"id": "w", "asset": "USD", "min_balance": nil},                     // 0: 201, unbounded
		map[string]any{"id": "exists", "asset": "USD"},                                    // 1: 409
		map[string]any{"id": "bad id", "asset": "usd"},                                    // 2: 422 id, asset
		map[string]any{"id": "x", "asset": "EUR", "metadata": map[string]any{"k": "v"}},   // 3: 201
		map[string]any{"id": "x", "asset": "USD"},                                         // 4: 409 (x just created)
		map[string]any{"id": "y", "asset": "USD", "min_balance": 5, "extra": 1},           // 5: 422 extra
		map[string]any{"id": "z", "asset": "USD", "min_balance": -7},                      // 6: 201
		map[string]any{"id": "q", "asset": "USD", "metadata": map[string]any{"k": false}}, // 7: 422 metadata.k
	}}
	r := c.expect(200, "", "POST", accountsPath(l)+"/batch", write, body)
	m := r.JSON()
	requireKeys(t, "batch answer", m, "results")
	results := m["results"].([]any)
	want := []struct {
		status int
		code   string
		fields []string
	}{
		{201, "", nil}, {409, "duplicate_account", nil}, {422, "validation_failed", []string{"id", "asset"}},
		{201, "", nil}, {409, "duplicate_account", nil}, {422, "validation_failed", []string{"extra"}},
		{201, "", nil}, {422, "validation_failed", []string{"metadata.k"}},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results for %d items: %s", len(results), len(want), r.Body)
	}
	for i, w := range want {
		res := results[i].(map[string]any)
		if int(num(t, res["status"])) != w.status {
			t.Fatalf("item %d: %v, want %d", i, res, w.status)
		}
		if w.status == 201 {
			requireKeys(t, "created item", res, "status", "account")
			a := res["account"].(map[string]any)
			if compact(t, c.getAccount(l, str(a, "id"))) != compact(t, a) {
				t.Fatalf("item %d: answer %v differs from GET", i, a)
			}
			continue
		}
		requireKeys(t, "failed item", res, "status", "error")
		p := res["error"].(map[string]any)
		if str(p, "code") != w.code || int(num(t, p["status"])) != w.status {
			t.Fatalf("item %d: problem %v, want %s", i, p, w.code)
		}
		var fs []string
		errs, _ := p["errors"].([]any)
		for _, e := range errs {
			fs = append(fs, str(e.(map[string]any), "field"))
		}
		for _, f := range w.fields {
			if !slices.Contains(fs, f) {
				t.Fatalf("item %d: fields %q, want %q (relative to the item)", i, fs, f)
			}
		}
	}
	if a := c.getAccount(l, "w"); a["min_balance"] != nil {
		t.Fatalf("w: %v", a)
	}
	if a := c.getAccount(l, "x"); str(a, "asset") != "EUR" {
		t.Fatalf("the first x must win: %v", a)
	}
	if a := c.getAccount(l, "z"); num(t, a["min_balance"]) != -7 {
		t.Fatalf("z: %v", a)
	}
	for _, id := range []string{"y", "q"} {
		c.expect(404, "not_found", "GET", accountsPath(l)+"/"+id, admin, nil)
	}

	// Whole-request failures create nothing.
	var tooMany []any
	for i := 0; i < 1001; i++ {
		tooMany = append(tooMany, map[string]any{"id": fmt.Sprintf("many-%04d", i), "asset": "USD"})
	}
	before := c.snapshot(l, "many-0000", "many-1000", "solo")
	requireField(t, c.do("POST", accountsPath(l)+"/batch", write, map[string]any{"accounts": tooMany}), "accounts")
	requireField(t, c.do("POST", accountsPath(l)+"/batch", write, `{}`), "accounts")
	requireField(t, c.do("POST", accountsPath(l)+"/batch", write, `{"accounts":{"id":"solo","asset":"USD"}}`), "accounts")
	requireField(t, c.do("POST", accountsPath(l)+"/batch", write, `{"accounts":[],"atomic":true}`), "atomic")
	requireField(t, c.do("POST", accountsPath(l)+"/batch", write, `[{"id":"solo","asset":"USD"}]`), "body")
	c.expect(400, "malformed_json", "POST", accountsPath(l)+"/batch", write, `{"accounts":[{"id":"solo","asset":"USD"}]`)
	c.unchanged(l, before)

	// Exactly 1,000 is fine, and an empty list creates nothing.
	c.expect(200, "", "POST", accountsPath(l)+"/batch", write, map[string]any{"accounts": tooMany[:1000]})
	r = c.expect(200, "", "POST", accountsPath(l)+"/batch", write, `{"accounts":[]}`)
	if compact(t, r.JSON()) != `{"results":[]}` {
		t.Fatalf("empty batch: %s", r.Body)
	}
	c.expect(404, "not_found", "GET", accountsPath(l)+"/many-1000", admin, nil)
	c.expect(200, "", "GET", accountsPath(l)+"/many-0999", admin, nil)
}

func TestAccountIdempotency(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("accidem")
	body := `{"id":"idem","asset":"USD","metadata":{"a":"1","b":"2"}}`
	r1 := c.expect(201, "", "POST", accountsPath(l), admin, body, "Idempotency-Key", "acct-1")
	if r1.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first answer is marked replayed")
	}
	c.fund(l, c.worldFor(l), "idem", 5, "USD")
	// Same key, same decoded body (other member order, white space): replay
	// with the account as it is now.
	r2 := c.expect(200, "", "POST", accountsPath(l), admin, " {\"metadata\":{\"b\":\"2\",\"a\":\"1\"},\n\"asset\":\"USD\", \"id\":\"idem\"} ", "Idempotency-Key", "acct-1")
	if r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay without Idempotent-Replayed: %v", r2.Header)
	}
	if num(t, r2.JSON()["balance"].(map[string]any)["posted"]) != 5 {
		t.Fatalf("replay does not show the account as it is now: %s", r2.Body)
	}
	// Same key, another body.
	before := c.snapshot(l, "idem", "other")
	c.expect(422, "idempotency_key_reused", "POST", accountsPath(l), admin, `{"id":"other","asset":"USD"}`, "Idempotency-Key", "acct-1")
	c.expect(422, "idempotency_key_reused", "POST", accountsPath(l), admin, `{"id":"idem","asset":"USD","min_balance":null,"metadata":{"a":"1","b":"2"}}`, "Idempotency-Key", "acct-1")
	// One namespace per ledger, shared by every route.
	c.expect(422, "idempotency_key_reused", "POST", txPath(l), admin, tx(posting(c.worldFor(l), "idem", 1, "USD")), "Idempotency-Key", "acct-1")
	c.unchanged(l, before)
	// Without a key, a second creation is a plain duplicate.
	c.expect(409, "duplicate_account", "POST", accountsPath(l), admin, body)
	// A duplicate_account is not stored: the same key succeeds once the id is free.
	c.expect(409, "duplicate_account", "POST", accountsPath(l), admin, body, "Idempotency-Key", "acct-2")
	c.expect(422, "validation_failed", "POST", accountsPath(l), admin, `{"id":"fresh","asset":"usd"}`, "Idempotency-Key", "acct-2")
	c.expect(201, "", "POST", accountsPath(l), admin, `{"id":"fresh","asset":"USD"}`, "Idempotency-Key", "acct-2")
	c.expect(200, "", "POST", accountsPath(l), admin, `{"id":"fresh","asset":"USD"}`, "Idempotency-Key", "acct-2")
}

// worldFor creates (once) and returns an unbounded USD account of ledger l.
func (c client) worldFor(l string) string {
	c.t.Helper()
	r := c.do("GET", accountsPath(l)+"/world", admin, nil)
	if r.Status == 404 {
		c.account(l, "world", "USD", nil)
	}
	return "world"
}

// TestAccountCreationRace: concurrent creations of one id answer one 201
// and otherwise 409 (without a key) or replays (with one), never a 5xx.
func TestAccountCreationRace(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("accrace")
	for _, key := range []string{"", "race-key"} {
		id := "racer" + key
		const n = 16
		var wg sync.WaitGroup
		answers := make([]*ledgertest.Response, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var headers []string
				if key != "" {
					headers = []string{"Idempotency-Key", key}
				}
				r, err := c.e.TryDo("POST", accountsPath(l), admin, map[string]any{"id": id, "asset": "USD"}, headers...)
				if err == nil {
					err = checkAnswer(r)
				}
				answers[i], errs[i] = r, err
			}()
		}
		wg.Wait()
		created := 0
		for i, r := range answers {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			switch {
			case r.Status == 201:
				created++
			case key == "" && r.Status == 409 && r.Code() == "duplicate_account":
			case key != "" && r.Status == 200 && r.Header.Get("Idempotent-Replayed") == "true":
			default:
				t.Fatalf("key %q: %d %s", key, r.Status, r.Body)
			}
		}
		if created != 1 {
			t.Fatalf("key %q: %d creations answered 201", key, created)
		}
	}
}

// TestPatchIdempotency: PATCH shares the ledger's key namespace (docs/api.md):
// a retry replays the account as it is now, anything else with the key is
// idempotency_key_reused, and a 404 or 422 leaves the key free.
func TestPatchIdempotency(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("patchidem")
	c.account(l, "p", "USD", nil)
	path := accountsPath(l) + "/p"
	body := `{"metadata":{"a":"1","gone":null},"min_balance":-50}`
	r1 := c.expect(200, "", "PATCH", path, admin, body, "Idempotency-Key", "patch-1")
	if r1.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first answer is marked replayed")
	}
	c.fund(l, c.worldFor(l), "p", 7, "USD")
	// The same patch again (other member order, white space): a replay with
	// the account as it is now, and the epoch of the ledger is not moved.
	r2 := c.expect(200, "", "PATCH", path, admin, " {\"min_balance\":-50, \"metadata\":{\"gone\":null,\"a\":\"1\"}}", "Idempotency-Key", "patch-1")
	if r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay without Idempotent-Replayed: %v", r2.Header)
	}
	if num(t, r2.JSON()["balance"].(map[string]any)["posted"]) != 7 || str(r2.JSON()["metadata"].(map[string]any), "a") != "1" {
		t.Fatalf("replay does not show the account as it is now: %s", r2.Body)
	}
	before := c.snapshot(l, "p")
	// Another body, another account, another method or route: reused.
	c.expect(422, "idempotency_key_reused", "PATCH", path, admin, `{"metadata":{"a":"2"}}`, "Idempotency-Key", "patch-1")
	c.account(l, "q", "USD", nil)
	c.expect(422, "idempotency_key_reused", "PATCH", accountsPath(l)+"/q", admin, body, "Idempotency-Key", "patch-1")
	c.expect(422, "idempotency_key_reused", "POST", txPath(l), admin, tx(posting(c.worldFor(l), "p", 1, "USD")), "Idempotency-Key", "patch-1")
	c.expect(422, "idempotency_key_reused", "POST", accountsPath(l), admin, `{"id":"r","asset":"USD"}`, "Idempotency-Key", "patch-1")
	c.unchanged(l, before)
	// …and the other way round: a transaction's key cannot patch.
	c.expect(201, "", "POST", txPath(l), admin, tx(posting(c.worldFor(l), "p", 1, "USD")), "Idempotency-Key", "tx-1")
	c.expect(422, "idempotency_key_reused", "PATCH", path, admin, body, "Idempotency-Key", "tx-1")
	// A 404 and a 422 are not stored: the key stays free for the real patch.
	c.expect(404, "not_found", "PATCH", accountsPath(l)+"/missing", admin, body, "Idempotency-Key", "patch-2")
	c.expect(422, "validation_failed", "PATCH", path, admin, `{"metadata":{"":"x"}}`, "Idempotency-Key", "patch-2")
	c.expect(422, "validation_failed", "PATCH", path, admin, body, "Idempotency-Key", "")
	r3 := c.expect(200, "", "PATCH", path, admin, `{"metadata":{"b":"2"}}`, "Idempotency-Key", "patch-2")
	if r3.Header.Get("Idempotent-Replayed") != "" || str(r3.JSON()["metadata"].(map[string]any), "b") != "2" {
		t.Fatalf("patch after a 404 with the same key: %v %s", r3.Header, r3.Body)
	}
}

// TestPatchIdempotencyRace: duplicates of a PATCH in flight wait for the
// first and replay it; exactly one of them applies the patch.
func TestPatchIdempotencyRace(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{})
	l := c.ledger("patchrace")
	c.account(l, "p", "USD", nil)
	const n = 8
	var wg sync.WaitGroup
	replayed := make(chan bool, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.e.TryDo("PATCH", accountsPath(l)+"/p", admin, `{"metadata":{"k":"v"}}`, "Idempotency-Key", "race")
			if err == nil {
				err = checkAnswer(r)
			}
			if err == nil && r.Status != 200 {
				err = fmt.Errorf("status %d: %s", r.Status, r.Body)
			}
			if err != nil {
				errs <- err
				return
			}
			replayed <- r.Header.Get("Idempotent-Replayed") == "true"
		}()
	}
	wg.Wait()
	close(errs)
	close(replayed)
	for err := range errs {
		t.Error(err)
	}
	fresh := 0
	for r := range replayed {
		if !r {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d of %d duplicates applied the patch, want exactly 1", fresh, n)
	}
}
