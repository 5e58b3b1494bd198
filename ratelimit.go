package ledgerd

import "math"

// RateLimit is a key's own token bucket (docs/api.md §API keys): PerSecond
// tokens a second, at most Burst at once. It replaces the node's default
// for that key on every node, the same budget whether it is raised or
// lowered.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Bounds of a key's own limit. PerSecond is kept to 0.001 (one request in
// 1,000 s): the shared limiter counts in requests per 1,000 s, an integer,
// so a finer rate could not be enforced as given. The upper bounds are far
// above what one node serves; they keep the numbers in the shared
// limiter's integer range.
const (
	MinRatePerSecond = 0.001
	MaxRatePerSecond = 1_000_000
	MaxRateBurst     = 1_000_000
)

// Validate records what is wrong with l under path (e.g. "rate_limit").
func (l RateLimit) Validate(v *Validation, path string) {
	ps := l.PerSecond
	switch {
	case math.IsNaN(ps) || ps <= 0:
		v.Add(path+".per_second", "must be positive")
	case ps < MinRatePerSecond || ps > MaxRatePerSecond:
		v.Add(path+".per_second", "must be between 0.001 and 1000000")
	case math.Abs(ps*1000-math.Round(ps*1000)) > 1e-6:
		v.Add(path+".per_second", "must have at most 3 decimal places")
	}
	if l.Burst < 1 || l.Burst > MaxRateBurst {
		v.Add(path+".burst", "must be an integer from 1 to 1000000")
	}
}

// PerKilosecond is the rate in requests per 1,000 s, the integer the
// shared limiter counts in (validated rates are whole in it).
func (l RateLimit) PerKilosecond() int {
	return max(1, int(math.Round(l.PerSecond*1000)))
}
