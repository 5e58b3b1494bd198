package ledgerd_test

import (
	"math"
	"testing"

	"github.com/ledgerd/ledgerd"
)

func TestMonitorCrossed(t *testing.T) {
	bal := func(posted, pd int64) ledgerd.Balance { return ledgerd.Balance{Posted: posted, PendingDebits: pd} }
	lt100 := ledgerd.MonitorCondition{Field: ledgerd.MonitorAvailable, Operator: "<", Value: 100}
	le100 := ledgerd.MonitorCondition{Field: ledgerd.MonitorAvailable, Operator: "<=", Value: 100}
	gt100p := ledgerd.MonitorCondition{Field: ledgerd.MonitorPosted, Operator: ">", Value: 100}
	ge100p := ledgerd.MonitorCondition{Field: ledgerd.MonitorPosted, Operator: ">=", Value: 100}
	for _, tc := range []struct {
		name          string
		c             ledgerd.MonitorCondition
		before, after ledgerd.Balance
		want          bool
	}{
		{"falls below", lt100, bal(150, 0), bal(99, 0), true},
		{"stays above", lt100, bal(150, 0), bal(100, 0), false},
		{"stays below: no second trigger", lt100, bal(50, 0), bal(10, 0), false},
		{"rises back above", lt100, bal(50, 0), bal(150, 0), false},
		{"a hold makes available fall", lt100, bal(150, 0), bal(150, 60), true},
		{"posted ignores holds", gt100p, bal(50, 0), bal(50, 500), false},
		{"pending credits never count", lt100, bal(150, 0), ledgerd.Balance{Posted: 150, PendingCredits: -500}, false},
		{"<= at the boundary", le100, bal(101, 0), bal(100, 0), true},
		{"< at the boundary", lt100, bal(101, 0), bal(100, 0), false},
		{"> rises past", gt100p, bal(100, 0), bal(101, 0), true},
		{">= reaches", ge100p, bal(99, 0), bal(100, 0), true},
		{">= already true", ge100p, bal(100, 0), bal(200, 0), false},
		{"unrepresentable available satisfies nothing", lt100, bal(150, 0), bal(math.MinInt64, 1), false},
		{"negative values", ledgerd.MonitorCondition{Field: ledgerd.MonitorPosted, Operator: "<", Value: -10}, bal(0, 0), bal(-11, 0), true},
	} {
		if got := ledgerd.Crossed(tc.c, tc.before, tc.after); got != tc.want {
			t.Errorf("%s: Crossed(%+v, %+v, %+v) = %v, want %v", tc.name, tc.c, tc.before, tc.after, got, tc.want)
		}
	}
}

// A sequence of balances triggers on each false→true edge only.
func TestMonitorCrossedSequence(t *testing.T) {
	c := ledgerd.MonitorCondition{Field: ledgerd.MonitorPosted, Operator: "<", Value: 0}
	seq := []int64{100, -1, -50, 20, 30, -5, -6, 0, -1}
	n := 0
	for i := 1; i < len(seq); i++ {
		if ledgerd.Crossed(c, ledgerd.Balance{Posted: seq[i-1]}, ledgerd.Balance{Posted: seq[i]}) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("crossings = %d, want 3", n)
	}
}

func TestMonitorConditionValid(t *testing.T) {
	for _, tc := range []struct {
		c  ledgerd.MonitorCondition
		ok bool
	}{
		{ledgerd.MonitorCondition{Field: "available", Operator: "<"}, true},
		{ledgerd.MonitorCondition{Field: "posted", Operator: ">="}, true},
		{ledgerd.MonitorCondition{Field: "pending", Operator: "<"}, false},
		{ledgerd.MonitorCondition{Field: "posted", Operator: "=="}, false},
		{ledgerd.MonitorCondition{Field: "posted", Operator: "=<"}, false},
	} {
		if tc.c.Valid() != tc.ok {
			t.Errorf("%+v: Valid = %v", tc.c, !tc.ok)
		}
	}
}

func TestParseRecipient(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"ops@example.com", true},
		{"a.b+tag@sub.example.org", true},
		{"ops@localhost", true},
		{"Ops <ops@example.com>", false},
		{"<ops@example.com>", false},
		{"ops", false},
		{"ops@", false},
		{"ops@example.com\r\nBcc: x@example.com", false},
		{"a@example.com, b@example.com", false},
		{"", false},
		{string(make([]byte, 300)) + "@example.com", false},
	} {
		if _, ok := ledgerd.ParseRecipient(tc.in); ok != tc.ok {
			t.Errorf("ParseRecipient(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
	}
}
