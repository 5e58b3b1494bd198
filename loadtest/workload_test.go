package loadtest

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

func TestChooser_staysInBounds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		n    int
		s    float64
	}{
		{"uniform", 10, 0},
		{"uniform_two_accounts", 2, 0},
		{"zipf", 1000, 1.1},
		{"zipf_two_accounts", 2, 1.1},
		{"zipf_extreme_skew", 50, 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newChooser(rand.New(rand.NewPCG(1, 2)), tt.n, tt.s)
			for range 20000 {
				if i := c.next(); i < 0 || i >= tt.n {
					t.Fatalf("next() = %d, outside [0, %d)", i, tt.n)
				}
				src, dst := c.pair()
				if src == dst || src < 0 || dst < 0 || src >= tt.n || dst >= tt.n {
					t.Fatalf("pair() = %d, %d: want two distinct accounts in [0, %d)", src, dst, tt.n)
				}
			}
		})
	}
}

func TestChooser_zipfIsSkewed(t *testing.T) {
	t.Parallel()
	const n, draws = 10000, 100000
	count := func(s float64) (first, last int) {
		c := newChooser(rand.New(rand.NewPCG(3, 4)), n, s)
		for range draws {
			switch c.next() {
			case 0:
				first++
			case n - 1:
				last++
			}
		}
		return first, last
	}
	if first, _ := count(0); first > draws/n*3 {
		t.Errorf("uniform: account 0 drawn %d times of %d, want about %d", first, draws, draws/n)
	}
	// With s = 1.1, v = 1 over 10,000 accounts the hottest takes ~15 %.
	first, last := count(1.1)
	if first < draws/10 || first > draws/4 {
		t.Errorf("zipf 1.1: account 0 drawn %d times of %d, want 10–25 %%", first, draws)
	}
	if last >= first/100 {
		t.Errorf("zipf 1.1: coldest account drawn %d times vs %d for the hottest", last, first)
	}
}

func TestAppendAccountID(t *testing.T) {
	t.Parallel()
	for i, want := range map[int]string{0: "acct:000000", 7: "acct:000007", 12345: "acct:012345", 999999: "acct:999999", 1234567: "acct:1234567"} {
		if got := accountID(i); got != want {
			t.Errorf("accountID(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestAppendTransfer(t *testing.T) {
	t.Parallel()
	cfg := config{Accounts: 100, Asset: "EUR", ReferenceRatio: 0.5, RejectRatio: 0.1}
	l := newLoad(cfg, nil, newStats(), "run1")
	w := l.newWorker(3, 9)
	var refs, overdrafts int
	const n = 4000
	for i := range n {
		b, overdraft := w.appendTransfer(nil, i%2 == 0, 77)
		var tx struct {
			Postings []struct {
				Source, Destination, Asset string
				Amount                     int64
			}
			Reference      *string
			Pending        bool
			PendingTimeout int64  `json:"pending_timeout_seconds"`
			IdempotencyKey string `json:"idempotency_key"`
		}
		if err := json.Unmarshal(b, &tx); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		p := tx.Postings[0]
		if len(tx.Postings) != 1 || p.Source == p.Destination || p.Asset != "EUR" || tx.IdempotencyKey != "lt-run1-3-25" {
			t.Fatalf("bad transfer %s", b)
		}
		switch {
		case overdraft && p.Amount != overdraftAmount, !overdraft && (p.Amount < 1 || p.Amount > 100):
			t.Fatalf("amount %d with overdraft=%v", p.Amount, overdraft)
		}
		if tx.Pending != (i%2 == 0) || tx.Pending && tx.PendingTimeout != holdTimeoutSeconds {
			t.Fatalf("pending fields wrong in %s", b)
		}
		if tx.Reference != nil {
			refs++
		}
		if overdraft {
			overdrafts++
		}
	}
	if refs < n*4/10 || refs > n*6/10 {
		t.Errorf("%d of %d transfers with a reference, want about half", refs, n)
	}
	if overdrafts < n/20 || overdrafts > n*3/20 {
		t.Errorf("%d of %d deliberate overdrafts, want about 10 %%", overdrafts, n)
	}
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	l := newLoad(config{Accounts: 2}, nil, newStats(), "abc")
	a, b := l.newWorker(1, 1), l.newWorker(2, 1)
	seen := map[string]bool{}
	for range 1000 {
		for _, k := range []string{a.uniqueKey("lt-"), b.uniqueKey("lt-")} {
			if seen[k] {
				t.Fatalf("key %q repeats", k)
			}
			seen[k] = true
		}
	}
}
