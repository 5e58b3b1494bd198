package ledgerd

import "math"

// add and sub are checked int64 arithmetic: ok is false on overflow, so a
// balance can never wrap around.
func add(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) {
		return 0, false
	}
	return c, true
}

func sub(a, b int64) (int64, bool) {
	if b == math.MinInt64 {
		if a >= 0 {
			return 0, false
		}
		return a - b, true
	}
	return add(a, -b)
}
