package ledgerd

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScore(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	score := func(n int64) *int64 { return &n }
	// debits returns n past debits of amount, one every gap, the last one
	// gap before t0.
	debits := func(n int, amount int64, gap time.Duration) []PastDebit {
		out := make([]PastDebit, n)
		for i := range out {
			out[i] = PastDebit{Sequence: int64(i + 1), At: t0.Add(-time.Duration(n-i) * gap), Amount: amount}
		}
		return out
	}
	old := t0.Add(-365 * 24 * time.Hour)
	velocity := &FraudRules{Velocity: &VelocityRule{MaxDebits: 3, WindowSeconds: 60}, FreezeScore: score(80)}
	large := &FraudRules{LargeAmount: &LargeAmountRule{MultipleOfMedian: 10, MinHistory: 5}, FreezeScore: score(80)}
	fresh := &FraudRules{NewAccount: &NewAccountRule{MaxAgeSeconds: 3600, AmountOver: 1000}, FreezeScore: score(80)}
	all := &FraudRules{Velocity: velocity.Velocity, LargeAmount: large.LargeAmount, NewAccount: fresh.NewAccount,
		FreezeScore: score(80)}
	for _, c := range []struct {
		name    string
		rules   *FraudRules
		amount  int64
		account FraudAccount
		score   int
		rules_  []string
		flags   bool
	}{
		{name: "no_rules", rules: &FraudRules{}, amount: 1 << 40, account: FraudAccount{CreatedAt: t0}},
		{name: "velocity/at_the_limit", rules: velocity, amount: 10,
			account: FraudAccount{CreatedAt: old, Recent: debits(2, 10, time.Second)}},
		{name: "velocity/one_over_scores_freeze_score", rules: velocity, amount: 10,
			account: FraudAccount{CreatedAt: old, Recent: debits(3, 10, time.Second)},
			score:   80, rules_: []string{RuleVelocity}, flags: true},
		{name: "velocity/old_debits_leave_the_window", rules: velocity, amount: 10,
			account: FraudAccount{CreatedAt: old, Recent: debits(10, 10, 30*time.Second)}, // 1 within 60 s
		},
		{name: "velocity/without_freeze_score_scores_80_and_flags_nothing",
			rules:  &FraudRules{Velocity: velocity.Velocity},
			amount: 10, account: FraudAccount{CreatedAt: old, Recent: debits(3, 10, time.Second)},
			score: 80, rules_: []string{RuleVelocity}},
		{name: "large_amount/over_the_multiple", rules: large, amount: 1001,
			account: FraudAccount{CreatedAt: old, Recent: debits(5, 100, time.Hour)},
			score:   50, rules_: []string{RuleLargeAmount}},
		{name: "large_amount/exactly_the_multiple", rules: large, amount: 1000,
			account: FraudAccount{CreatedAt: old, Recent: debits(5, 100, time.Hour)}},
		{name: "large_amount/too_little_history", rules: large, amount: 1 << 40,
			account: FraudAccount{CreatedAt: old, Recent: debits(4, 100, time.Hour)}},
		{name: "large_amount/huge_median_does_not_overflow", rules: large, amount: 1<<62 + 1,
			account: FraudAccount{CreatedAt: old, Recent: debits(5, 1<<61, time.Hour)}},
		{name: "new_account/young_and_large", rules: fresh, amount: 1001,
			account: FraudAccount{CreatedAt: t0.Add(-time.Minute)}, score: 50, rules_: []string{RuleNewAccount}},
		{name: "new_account/old_enough", rules: fresh, amount: 1 << 40,
			account: FraudAccount{CreatedAt: t0.Add(-2 * time.Hour)}},
		{name: "new_account/small", rules: fresh, amount: 1000, account: FraudAccount{CreatedAt: t0}},
		{name: "large_and_new_together_flag", rules: all, amount: 5000,
			account: FraudAccount{CreatedAt: t0.Add(-time.Minute), Recent: debits(5, 100, time.Hour)},
			score:   100, rules_: []string{RuleLargeAmount, RuleNewAccount}, flags: true},
		{name: "everything_is_capped_at_100", rules: all, amount: 5000,
			account: FraudAccount{CreatedAt: t0.Add(-time.Minute), Recent: debits(5, 100, time.Second)},
			score:   100, rules_: []string{RuleVelocity, RuleLargeAmount, RuleNewAccount}, flags: true},
		{name: "near_the_median_with_every_rule", rules: all, amount: 120,
			account: FraudAccount{CreatedAt: old, Recent: debits(50, 100, time.Minute)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tx := &FraudTx{ID: "tx", Sequence: 100, At: t0, Debits: []FraudDebit{{Account: "a", Amount: c.amount}}}
			acc := c.account
			k := Score(c.rules, tx, map[string]*FraudAccount{"a": &acc})
			if k.Score != c.score || !slices.Equal(k.Rules(""), c.rules_) || c.rules.Flags(&k) != c.flags {
				t.Fatalf("Score = %d %v (flags %v), want %d %v (flags %v)", k.Score, k.Reasons, c.rules.Flags(&k),
					c.score, c.rules_, c.flags)
			}
			for _, r := range k.Reasons {
				if r.Account != "a" || r.Detail == "" {
					t.Errorf("reason %+v", r)
				}
			}
		})
	}
}

// TestScoreRecordedBurst: recording each debit after scoring it (as the
// worker does along the log) makes the (max_debits+1)th debit of a burst
// the first to fire, whatever the history length bound.
func TestScoreRecordedBurst(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &FraudRules{Velocity: &VelocityRule{MaxDebits: 20, WindowSeconds: 60}}
	acc := &FraudAccount{CreatedAt: t0.Add(-time.Hour)}
	for i := range FraudHistory + 50 {
		tx := &FraudTx{Sequence: int64(i + 1), At: t0.Add(time.Duration(i) * time.Millisecond),
			Debits: []FraudDebit{{Account: "a", Amount: 1}}}
		k := Score(r, tx, map[string]*FraudAccount{"a": acc})
		if fired := k.Score > 0; fired != (i >= 20) {
			t.Fatalf("debit %d: score %d", i+1, k.Score)
		}
		acc.Record(tx, 1)
		if len(acc.Recent) > FraudHistory {
			t.Fatalf("history grew to %d", len(acc.Recent))
		}
	}
	if last := acc.Recent[len(acc.Recent)-1]; last.Sequence != FraudHistory+50 {
		t.Fatalf("last recorded %d", last.Sequence)
	}
}

func TestFraudRulesValidate(t *testing.T) {
	t.Parallel()
	n := func(x int64) *int64 { return &x }
	r := &FraudRules{Velocity: &VelocityRule{MaxDebits: 0, WindowSeconds: 86_401},
		LargeAmount: &LargeAmountRule{MultipleOfMedian: 1, MinHistory: 101},
		NewAccount:  &NewAccountRule{MaxAgeSeconds: 0, AmountOver: -1}, FreezeScore: n(101)}
	var v Validation
	r.Validate(&v)
	var got []string
	for _, f := range v.fields {
		got = append(got, f.Field)
	}
	want := []string{"velocity.max_debits", "velocity.window_seconds", "large_amount.multiple_of_median",
		"large_amount.min_history", "new_account.max_age_seconds", "new_account.amount_over", "freeze_score"}
	if !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	ok := &FraudRules{Velocity: &VelocityRule{MaxDebits: 20, WindowSeconds: 60}, FreezeScore: n(80)}
	var v2 Validation
	ok.Validate(&v2)
	if v2.Failed() {
		t.Fatalf("valid rules refused: %v", v2.Err())
	}
	if !strings.Contains(v.Err().Error(), "between") {
		t.Errorf("message %q", v.Err().Error())
	}
}
