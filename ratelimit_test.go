package ledgerd_test

import (
	"math"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd"
)

func TestRateLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		l         ledgerd.RateLimit
		badFields []string
	}{
		{"whole rate", ledgerd.RateLimit{PerSecond: 100, Burst: 200}, nil},
		{"fractional rate", ledgerd.RateLimit{PerSecond: 0.5, Burst: 1}, nil},
		{"smallest rate", ledgerd.RateLimit{PerSecond: 0.001, Burst: 1}, nil},
		{"largest values", ledgerd.RateLimit{PerSecond: 1_000_000, Burst: 1_000_000}, nil},
		{"three decimals", ledgerd.RateLimit{PerSecond: 12.345, Burst: 3}, nil},
		{"zero rate", ledgerd.RateLimit{PerSecond: 0, Burst: 1}, []string{"rate_limit.per_second"}},
		{"negative rate", ledgerd.RateLimit{PerSecond: -1, Burst: 1}, []string{"rate_limit.per_second"}},
		{"NaN rate", ledgerd.RateLimit{PerSecond: math.NaN(), Burst: 1}, []string{"rate_limit.per_second"}},
		{"rate below the resolution", ledgerd.RateLimit{PerSecond: 0.0005, Burst: 1}, []string{"rate_limit.per_second"}},
		{"rate too high", ledgerd.RateLimit{PerSecond: 1_000_001, Burst: 1}, []string{"rate_limit.per_second"}},
		{"four decimals", ledgerd.RateLimit{PerSecond: 1.0005, Burst: 1}, []string{"rate_limit.per_second"}},
		{"zero burst", ledgerd.RateLimit{PerSecond: 1, Burst: 0}, []string{"rate_limit.burst"}},
		{"negative burst", ledgerd.RateLimit{PerSecond: 1, Burst: -3}, []string{"rate_limit.burst"}},
		{"burst too high", ledgerd.RateLimit{PerSecond: 1, Burst: 1_000_001}, []string{"rate_limit.burst"}},
		{"both wrong", ledgerd.RateLimit{PerSecond: -1, Burst: 0}, []string{"rate_limit.per_second", "rate_limit.burst"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v ledgerd.Validation
			tc.l.Validate(&v, "rate_limit")
			var got []string
			if err := v.Err(); err != nil {
				for _, f := range err.Fields {
					got = append(got, f.Field)
				}
			}
			if !slices.Equal(got, tc.badFields) {
				t.Fatalf("field errors %v, want %v", got, tc.badFields)
			}
		})
	}
}

func TestRateLimitPerKilosecond(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		want      int
	}{{0.001, 1}, {0.5, 500}, {12.345, 12345}, {0.2, 200}, {1_000_000, 1_000_000_000}} {
		if got := (ledgerd.RateLimit{PerSecond: tc.perSecond, Burst: 1}).PerKilosecond(); got != tc.want {
			t.Errorf("%v/s is %d per 1,000 s, want %d", tc.perSecond, got, tc.want)
		}
	}
}
