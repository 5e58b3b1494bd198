package httpapi

import (
	"sync"
	"time"
)

// negCache remembers names the database does not hold (key ids, ledger
// names) for a short time, so that asking again costs no query. It is
// bounded and separate from the caches of names that exist: a flood of
// invented names evicts only other invented names, never a live key or
// ledger.
type negCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]time.Time // name → when it was found missing
}

func newNegCache(ttl time.Duration, max int) *negCache {
	return &negCache{ttl: ttl, max: max, m: make(map[string]time.Time)}
}

// has reports whether name was found missing less than ttl ago.
func (c *negCache) has(name string) bool {
	c.mu.Lock()
	at, ok := c.m[name]
	c.mu.Unlock()
	return ok && time.Since(at) < c.ttl
}

func (c *negCache) add(name string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, at := range c.m {
			if now.Sub(at) >= c.ttl {
				delete(c.m, k)
			}
		}
		// Still mostly fresh entries: drop a quarter, arbitrary ones (Go's
		// map order), so that the sweep runs once per max/4 additions
		// under a flood. Every entry is a missing name, none is precious.
		for k := range c.m {
			if len(c.m) <= c.max*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[name] = now
}

func (c *negCache) remove(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}
