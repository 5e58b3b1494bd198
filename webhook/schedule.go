package webhook

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Schedule is the waits between the attempts of one delivery: after the
// first attempt fails, the second follows after Schedule[0], and so on.
// A delivery gets len(Schedule)+1 attempts; when the last fails it is
// dead-lettered.
type Schedule []time.Duration

// DefaultSchedule is Standard Webhooks' suggested schedule: eight attempts
// over about 28 hours, quick at first (a blip, a deploy) and then spread
// out so that a receiver down for a day still gets its events.
var DefaultSchedule = Schedule{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Jitter is how far each wait is spread, as a fraction either way: a wait
// w becomes uniform in [w·(1−Jitter), w·(1+Jitter)). It keeps the
// deliveries that failed together (a receiver's outage) from all coming
// back in the same second.
const Jitter = 0.10

// Limits on a schedule from the environment: enough for any sensible
// policy, small enough that a typo (an extra zero) is caught.
const (
	maxScheduleLen  = 32
	maxScheduleWait = 7 * 24 * time.Hour
)

// ParseSchedule parses LEDGERD_WEBHOOK_RETRY_SCHEDULE: waits in Go
// duration syntax, comma-separated, each positive and at most a week
// ("1s,1s,2s" is four attempts). Spaces around a wait are allowed. The
// error names the offending position, for a message at start-up.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("retry schedule is empty: give at least one wait, e.g. 5s,5m,30m")
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxScheduleLen {
		return nil, fmt.Errorf("retry schedule has %d waits, at most %d", len(parts), maxScheduleLen)
	}
	sch := make(Schedule, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("retry schedule: wait %d is empty", i+1)
		}
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, fmt.Errorf("retry schedule: wait %d %q is not a duration like 5s, 30m or 2h", i+1, p)
		}
		if d <= 0 || d > maxScheduleWait {
			return nil, fmt.Errorf("retry schedule: wait %d %q must be positive and at most 168h", i+1, p)
		}
		sch[i] = d
	}
	return sch, nil
}

// Attempts is the number of attempts a delivery gets.
func (s Schedule) Attempts() int { return len(s) + 1 }

// String renders s as ParseSchedule reads it.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Next returns when to make the next attempt of a delivery that has had
// attempts attempts so far, the last one ending at now; ok is false when
// none is left (dead-letter it). The first attempt (attempts == 0) is due
// at once. rnd draws uniformly from [0, 1); nil means math/rand/v2. The
// result is never before now.
func (s Schedule) Next(attempts int, now time.Time, rnd func() float64) (at time.Time, ok bool) {
	switch {
	case attempts <= 0:
		return now, true
	case attempts > len(s):
		return time.Time{}, false
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	w := float64(s[attempts-1]) * (1 - Jitter + 2*Jitter*rnd())
	return now.Add(max(time.Duration(w), 0)), true
}
