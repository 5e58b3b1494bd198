package ledgerd

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Fraud scoring (docs/fraud.md): the workers score every transaction of a
// ledger whose rules are set, after its commit, from the transaction log
// alone. This file is the decision: the rules, their validation and Score,
// a pure function of the rules, the transaction and what the log says of
// its debited accounts. Loading that state and storing the outcome is the
// storage adapter's part.

// Rule names, as reasons name them.
const (
	RuleVelocity    = "velocity"
	RuleLargeAmount = "large_amount"
	RuleNewAccount  = "new_account"
)

// Defaults of a rule's fields left out of its object, and of freeze_score
// left out of the rules (docs/fraud.md).
const (
	DefaultVelocityMaxDebits     = 20
	DefaultVelocityWindowSeconds = 60
	DefaultMultipleOfMedian      = 10
	DefaultMinHistory            = 5
	DefaultNewAccountMaxAge      = 86_400
	DefaultNewAccountAmountOver  = 100_000
	DefaultFreezeScore           = 80
)

// Bounds of the rules. They bound the per-account state a worker loads:
// at most FraudHistory debits before a batch of transactions.
const (
	MaxVelocityDebits   = 1_000
	MaxVelocityWindow   = 86_400
	MaxMultipleOfMedian = 1_000_000
	// FraudMedianDebits is how many of an account's most recent debits
	// its median is taken over, and so the largest min_history.
	FraudMedianDebits = 100
	MaxNewAccountAge  = 31_536_000 // a year
	// FraudHistory is the most debits of one account a scorer needs from
	// before the transactions it scores: the median's and one more than
	// the most debits a velocity window may hold.
	FraudHistory = MaxVelocityDebits + 1
)

// Scores the rules add when they fire. Velocity scores freeze_score (80
// when there is none) so that a burst alone flags; a large amount or a
// new account alone does not at the default freeze_score, both together
// do. The sum is capped at 100.
const (
	largeAmountScore = 50
	newAccountScore  = 50
	maxScore         = 100
)

// VelocityRule: at most MaxDebits debits of one account within
// WindowSeconds; the next one fires.
type VelocityRule struct {
	MaxDebits     int64
	WindowSeconds int64
}

// LargeAmountRule: a debit of more than MultipleOfMedian times the median
// of the account's recent debits fires, once the account has MinHistory
// debits.
type LargeAmountRule struct {
	MultipleOfMedian int64
	MinHistory       int64
}

// NewAccountRule: a debit of more than AmountOver from an account younger
// than MaxAgeSeconds fires.
type NewAccountRule struct {
	MaxAgeSeconds int64
	AmountOver    int64
}

// FraudRules are a ledger's rules. A nil rule is off; a nil FreezeScore
// flags and freezes nothing (transactions are still scored).
type FraudRules struct {
	Velocity    *VelocityRule
	LargeAmount *LargeAmountRule
	NewAccount  *NewAccountRule
	FreezeScore *int64
}

// Any reports whether any rule is on.
func (r *FraudRules) Any() bool {
	return r != nil && (r.Velocity != nil || r.LargeAmount != nil || r.NewAccount != nil)
}

// Validate checks the rules' ranges, with field paths as in the JSON.
func (r *FraudRules) Validate(v *Validation) {
	between := func(field string, x, lo, hi int64) {
		if x < lo || x > hi {
			v.Add(field, "must be between %d and %d", lo, hi)
		}
	}
	if x := r.Velocity; x != nil {
		between("velocity.max_debits", x.MaxDebits, 1, MaxVelocityDebits)
		between("velocity.window_seconds", x.WindowSeconds, 1, MaxVelocityWindow)
	}
	if x := r.LargeAmount; x != nil {
		between("large_amount.multiple_of_median", x.MultipleOfMedian, 2, MaxMultipleOfMedian)
		between("large_amount.min_history", x.MinHistory, 1, FraudMedianDebits)
	}
	if x := r.NewAccount; x != nil {
		between("new_account.max_age_seconds", x.MaxAgeSeconds, 1, MaxNewAccountAge)
		if x.AmountOver < 0 {
			v.Add("new_account.amount_over", "must be at least 0")
		}
	}
	if r.FreezeScore != nil {
		between("freeze_score", *r.FreezeScore, 1, maxScore)
	}
}

// Flags reports whether a transaction with risk k is flagged (and its
// debited accounts frozen).
func (r *FraudRules) Flags(k *Risk) bool {
	return r.FreezeScore != nil && int64(k.Score) >= *r.FreezeScore
}

func (r *FraudRules) velocityScore() int {
	if r.FreezeScore != nil {
		return int(*r.FreezeScore)
	}
	return DefaultFreezeScore
}

// Risk is a transaction's score, 0 to 100, and the reasons for it, one per
// rule and account that fired, in the order of the transaction's debits.
type Risk struct {
	Score   int
	Reasons []RiskReason
}

// RiskReason is one rule firing on one debited account.
type RiskReason struct {
	Rule    string
	Account string
	Detail  string
}

// Rules returns the distinct rules of the reasons naming account ("" for
// every account), in order.
func (k *Risk) Rules(account string) []string {
	var out []string
	for _, x := range k.Reasons {
		if (account == "" || x.Account == account) && !slices.Contains(out, x.Rule) {
			out = append(out, x.Rule)
		}
	}
	return out
}

// FraudDebit is what one transaction took from one account: the sum of
// its posted debit legs of that account.
type FraudDebit struct {
	Account string
	Amount  int64
}

// FraudTx is a committed transaction as scoring sees it.
type FraudTx struct {
	ID       string
	Sequence int64
	At       time.Time
	Debits   []FraudDebit
}

// PastDebit is one earlier debit of an account.
type PastDebit struct {
	Sequence int64
	At       time.Time
	Amount   int64
}

// FraudAccount is what the log says of a debited account before the
// transaction being scored.
type FraudAccount struct {
	CreatedAt time.Time
	// Unbounded: min_balance null. Scored, never frozen automatically.
	Unbounded bool
	// Recent holds the account's latest debits before the transaction,
	// oldest first, at most FraudHistory of them.
	Recent []PastDebit
}

// Record appends what transaction t took from the account, keeping the latest
// FraudHistory debits.
func (a *FraudAccount) Record(t *FraudTx, amount int64) {
	if n := len(a.Recent); n >= FraudHistory {
		a.Recent = append(a.Recent[:0], a.Recent[n-FraudHistory+1:]...)
	}
	a.Recent = append(a.Recent, PastDebit{Sequence: t.Sequence, At: t.At, Amount: amount})
}

// Score scores t under rules r, given its debited accounts as they were
// before it. An account missing from accounts is judged on no history.
func Score(r *FraudRules, t *FraudTx, accounts map[string]*FraudAccount) Risk {
	k := Risk{Reasons: []RiskReason{}}
	var fired [3]bool
	for _, d := range t.Debits {
		a := accounts[d.Account]
		if a == nil {
			a = &FraudAccount{CreatedAt: t.At}
		}
		if v := r.Velocity; v != nil {
			start := t.At.Add(-time.Duration(v.WindowSeconds) * time.Second)
			n := int64(1) // this debit
			for i := len(a.Recent) - 1; i >= 0 && a.Recent[i].At.After(start); i-- {
				n++
			}
			if n > v.MaxDebits {
				fired[0] = true
				k.Reasons = append(k.Reasons, RiskReason{Rule: RuleVelocity, Account: d.Account,
					Detail: strconv.FormatInt(n, 10) + " debits within " + strconv.FormatInt(v.WindowSeconds, 10) +
						" s (at most " + strconv.FormatInt(v.MaxDebits, 10) + ")"})
			}
		}
		if l := r.LargeAmount; l != nil && int64(len(a.Recent)) >= l.MinHistory {
			m := median(a.Recent)
			if m >= 0 && d.Amount/l.MultipleOfMedian >= m && d.Amount > m*l.MultipleOfMedian {
				fired[1] = true
				k.Reasons = append(k.Reasons, RiskReason{Rule: RuleLargeAmount, Account: d.Account,
					Detail: strconv.FormatInt(d.Amount, 10) + " is more than " + strconv.FormatInt(l.MultipleOfMedian, 10) +
						" times the median " + strconv.FormatInt(m, 10) + " of the account's recent debits"})
			}
		}
		if n := r.NewAccount; n != nil && t.At.Sub(a.CreatedAt) < time.Duration(n.MaxAgeSeconds)*time.Second &&
			d.Amount > n.AmountOver {
			fired[2] = true
			k.Reasons = append(k.Reasons, RiskReason{Rule: RuleNewAccount, Account: d.Account,
				Detail: strconv.FormatInt(d.Amount, 10) + " from an account created " +
					strconv.FormatInt(int64(t.At.Sub(a.CreatedAt)/time.Second), 10) + " s before (more than " +
					strconv.FormatInt(n.AmountOver, 10) + " within " + strconv.FormatInt(n.MaxAgeSeconds, 10) + " s)"})
		}
	}
	if fired[0] {
		k.Score += r.velocityScore()
	}
	if fired[1] {
		k.Score += largeAmountScore
	}
	if fired[2] {
		k.Score += newAccountScore
	}
	k.Score = min(k.Score, maxScore)
	return k
}

// median is the median of the amounts of the latest FraudMedianDebits
// debits (the lower middle one of an even count, so that it is always an
// amount the account moved).
func median(ds []PastDebit) int64 {
	if len(ds) > FraudMedianDebits {
		ds = ds[len(ds)-FraudMedianDebits:]
	}
	if len(ds) == 0 {
		return -1
	}
	xs := make([]int64, len(ds))
	for i, d := range ds {
		xs[i] = d.Amount
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// SaturatingAdd is x + y, or the largest int64 when that overflows
// (amounts are positive).
func SaturatingAdd(x, y int64) int64 {
	if x > math.MaxInt64-y {
		return math.MaxInt64
	}
	return x + y
}
