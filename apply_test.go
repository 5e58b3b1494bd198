package ledgerd

import (
	"math"
	"math/rand/v2"
	"testing"
)

func i64(v int64) *int64 { return &v }

func book(accts map[string]*BookAccount) *Book {
	b := NewBook(len(accts))
	for id, a := range accts {
		b.Put(id, a)
	}
	return b
}

func TestApply(t *testing.T) {
	t.Parallel()
	newBook := func() *Book {
		return book(map[string]*BookAccount{
			"world": {Asset: "USD"},
			"alice": {Asset: "USD", MinBalance: i64(0), Balance: Balance{Posted: 100}},
			"bob":   {Asset: "USD", MinBalance: i64(0)},
			"eur":   {Asset: "EUR", MinBalance: i64(-50)},
			"weur":  {Asset: "EUR"},
			"over":  {Asset: "USD", MinBalance: i64(10), Balance: Balance{Posted: 5}},
		})
	}
	p := func(src, dst string, amt int64, asset string) Posting {
		return Posting{Source: src, Destination: dst, Amount: amt, Asset: asset}
	}
	tests := []struct {
		name     string
		postings []Posting
		pending  bool
		code     Code
		check    func(t *testing.T, b *Book)
	}{
		{name: "posted transfer moves posted balances", postings: []Posting{p("alice", "bob", 60, "USD")},
			check: func(t *testing.T, b *Book) {
				if b.Get("alice").Balance.Posted != 40 || b.Get("bob").Balance.Posted != 60 {
					t.Fatalf("balances %+v %+v", b.Get("alice").Balance, b.Get("bob").Balance)
				}
			}},
		{name: "insufficient_funds", postings: []Posting{p("alice", "bob", 101, "USD")}, code: CodeInsufficientFunds},
		{name: "net effect judged per transaction", postings: []Posting{p("alice", "bob", 150, "USD"), p("world", "alice", 50, "USD")},
			check: func(t *testing.T, b *Book) {
				if b.Get("alice").Balance.Posted != 0 {
					t.Fatal(b.Get("alice").Balance)
				}
			}},
		{name: "unbounded world goes negative", postings: []Posting{p("world", "bob", 1<<40, "USD")}},
		{name: "negative min_balance allows overdraft to it", postings: []Posting{p("eur", "weur", 50, "EUR")}},
		{name: "beyond negative min_balance", postings: []Posting{p("eur", "weur", 51, "EUR")}, code: CodeInsufficientFunds},
		{name: "account_not_found", postings: []Posting{p("alice", "nobody", 1, "USD")}, code: CodeAccountNotFound},
		{name: "asset_mismatch", postings: []Posting{p("alice", "eur", 1, "USD")}, code: CodeAssetMismatch},
		{name: "posting asset differs from accounts", postings: []Posting{p("alice", "bob", 1, "EUR")}, code: CodeAssetMismatch},
		{name: "credit to an account below its minimum is allowed", postings: []Posting{p("world", "over", 1, "USD")}},
		{name: "debit from an account below its minimum is not", postings: []Posting{p("over", "world", 1, "USD")}, code: CodeInsufficientFunds},
		{name: "hold moves pending only and counts against available", postings: []Posting{p("alice", "bob", 100, "USD")}, pending: true,
			check: func(t *testing.T, b *Book) {
				a, bb := b.Get("alice").Balance, b.Get("bob").Balance
				if a.Posted != 100 || a.PendingDebits != 100 || bb.PendingCredits != 100 || bb.Posted != 0 {
					t.Fatalf("%+v %+v", a, bb)
				}
				if av, _ := a.Available(); av != 0 {
					t.Fatal(av)
				}
			}},
		{name: "hold beyond available", postings: []Posting{p("alice", "bob", 101, "USD")}, pending: true, code: CodeInsufficientFunds},
		{name: "overflow is validation_failed", postings: []Posting{p("world", "bob", math.MaxInt64, "USD"), p("world", "bob", 1, "USD")}, code: CodeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBook()
			before := b.Snapshot([]string{"world", "alice", "bob", "eur", "over"})
			legs, err := b.Apply(tt.postings, tt.pending, nil)
			if tt.code != "" {
				if err == nil || err.Code != tt.code {
					t.Fatalf("got %v, want %s", err, tt.code)
				}
				after := b.Snapshot([]string{"world", "alice", "bob", "eur", "over"})
				for id, a := range before {
					if after[id] != a {
						t.Fatalf("rejected apply changed %s: %+v -> %+v", id, a, after[id])
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(legs) != 2*len(tt.postings) {
				t.Fatalf("%d legs", len(legs))
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

// TestApplyRandomKeepsInvariants applies random transfers and checks the
// invariants of docs/api.md §Invariants after each: posted sums to zero per asset, no
// bounded account below its minimum, versions count changes, and each leg's
// running balance ends at the account's balance.
func TestApplyRandomKeepsInvariants(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"world", "a", "b", "c", "d", "e"}
	b := NewBook(len(ids))
	b.Put("world", &BookAccount{Asset: "USD"})
	for _, id := range ids[1:] {
		b.Put(id, &BookAccount{Asset: "USD", MinBalance: i64(0)})
	}
	for i := 0; i < 20000; i++ {
		n := 1 + r.IntN(3)
		ps := make([]Posting, n)
		for j := range ps {
			s := ids[r.IntN(len(ids))]
			d := ids[r.IntN(len(ids))]
			for d == s {
				d = ids[r.IntN(len(ids))]
			}
			ps[j] = Posting{Source: s, Destination: d, Amount: 1 + r.Int64N(500), Asset: "USD"}
		}
		legs, err := b.Apply(ps, r.IntN(4) == 0, nil) // a quarter are holds
		if err != nil && err.Code != CodeInsufficientFunds {
			t.Fatal(err)
		}
		var sum int64
		b.Accounts(func(id string, a *BookAccount) {
			sum += a.Balance.Posted
			if a.MinBalance != nil && a.Balance.Posted < *a.MinBalance {
				t.Fatalf("%s below minimum: %d", id, a.Balance.Posted)
			}
		})
		if sum != 0 {
			t.Fatalf("posted sums to %d", sum)
		}
		// An account's last leg of a transaction holds its whole balance:
		// what a read takes from the newest entry.
		last := map[string]Leg{}
		for _, l := range legs {
			last[l.Account] = l
		}
		for id, l := range last {
			a := b.Get(id)
			got := BookAccount{Asset: a.Asset, MinBalance: a.MinBalance, Touched: true, Version: l.Version,
				Balance: Balance{Posted: l.PostedAfter, PendingDebits: l.PendingDebitsAfter, PendingCredits: l.PendingCreditsAfter}}
			if got != *a {
				t.Fatalf("account %s: last leg says %+v, book %+v", id, got, *a)
			}
		}
	}
}

func TestCheckedArithmetic(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b int64
		add  bool
		ok   bool
	}{
		{math.MaxInt64, 1, true, false}, {math.MinInt64, -1, true, false}, {math.MaxInt64, -1, true, true},
		{math.MinInt64, 1, false, false}, {0, math.MinInt64, false, false}, {-1, math.MinInt64, false, true},
		{5, 7, false, true},
	}
	for _, c := range cases {
		var ok bool
		if c.add {
			_, ok = add(c.a, c.b)
		} else {
			_, ok = sub(c.a, c.b)
		}
		if ok != c.ok {
			t.Errorf("add=%v(%d, %d): ok=%v, want %v", c.add, c.a, c.b, ok, c.ok)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fn   func(string) bool
		s    string
		want bool
	}{
		{ValidAccountID, "users:alice:wallet", true}, {ValidAccountID, "a@b.c-d_e", true},
		{ValidAccountID, ":a", false}, {ValidAccountID, "a b", false}, {ValidAccountID, "", false},
		{ValidAccountID, string(make([]byte, 129)), false},
		{ValidAsset, "USD", true}, {ValidAsset, "USD_2", true}, {ValidAsset, "usd", false}, {ValidAsset, "1USD", false},
		{ValidAsset, "ABCDEFGHIJKLMNOPQ", false},
		{ValidLedgerName, "demo", true}, {ValidLedgerName, "a-b_c", true}, {ValidLedgerName, "-a", false}, {ValidLedgerName, "A", false},
	} {
		if got := c.fn(c.s); got != c.want {
			t.Errorf("%q: got %v", c.s, got)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`a"b\c`: `"a\"b\\c"`, "x\ny\t\x01": `"x\ny\t\u0001"`, "é": `"é"`, "\xff": `"\ufffd"`, "\u2028": `"\u2028"`,
	} {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("%q: got %s want %s", in, got, want)
		}
	}
	if got := string(AppendMetadataJSON(nil, map[string]string{"b": "2", "a": "1"})); got != `{"a":"1","b":"2"}` {
		t.Error(got)
	}
}
