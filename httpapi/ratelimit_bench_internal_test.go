package httpapi

import (
	"context"
	"strconv"
	"testing"

	"github.com/ledgerd/ledgerd"
)

// BenchmarkRateLimitAllow measures the in-process limiter's hot path: one
// token from one of 1,000 keys' buckets, all already created, under the
// node's default and under a key's own limit (unchanged since the bucket
// was made, the common case).
//
//	go test -run '^$' -bench BenchmarkRateLimitAllow -benchmem ./httpapi
func BenchmarkRateLimitAllow(b *testing.B) {
	for _, c := range []struct {
		name string
		own  ledgerd.RateLimit
	}{{"default", ledgerd.RateLimit{}}, {"own", ledgerd.RateLimit{PerSecond: 5e8, Burst: 1e9}}} {
		b.Run(c.name, func(b *testing.B) {
			l := newLimiter(1e9, 1e9)
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = strconv.Itoa(i)
				l.Allow(context.Background(), keys[i], c.own)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if ok, _ := l.Allow(context.Background(), keys[i%len(keys)], c.own); !ok {
						b.Fatal("refused")
					}
					i++
				}
			})
		})
	}
}
