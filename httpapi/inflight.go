package httpapi

import (
	"errors"
	"sync"
)

// Default budgets for request bodies held in memory at once. What a body
// costs is more than its bytes: the decoded batch, its rows encoded for
// storage and the results live as long as the request, and the garbage
// they leave waits for the collector. Measured with scripts/bodyflood.sh
// (batches of 1,000 transfers with 15.5 KB of metadata each, 15.9 MB):
// one such request took the node's RSS from 19 to ~150 MB; with 64 MiB per
// node, four in flight peaked at 621 MB, beyond the 512 MiB container the
// docs suggest. 40 MiB admits two full 16 MiB batches and a few smaller
// requests; 20 MiB per key keeps one client from taking all of it.
const (
	DefaultBodyBudget    = 40 << 20
	DefaultKeyBodyBudget = 20 << 20
)

var (
	errNodeBudget = errors.New("the node's budget for request bodies is spent")
	errKeyBudget  = errors.New("this key's budget for request bodies is spent")
)

// bodyBudget counts the bytes of request bodies a node holds, in total and
// per key. A request takes its share before it reads (its declared length,
// or as a chunked body grows) and gives it back when its answer is written,
// so the count covers the body for the request's whole life.
type bodyBudget struct {
	nodeMax, keyMax int64
	mu              sync.Mutex
	node            int64
	keys            map[string]int64 // only keys with bytes in flight
	metrics         *Metrics
}

func newBodyBudget(nodeMax, keyMax int64) *bodyBudget {
	if nodeMax <= 0 {
		nodeMax = DefaultBodyBudget
	}
	if keyMax <= 0 {
		keyMax = DefaultKeyBodyBudget
	}
	return &bodyBudget{nodeMax: nodeMax, keyMax: keyMax, keys: map[string]int64{}}
}

// take reserves n more bytes for key, for a request that holds own
// already, or reports which budget refused them. A request larger than a
// whole budget is still admitted when nothing else holds that budget, so
// no valid request is refused forever.
func (b *bodyBudget) take(key string, n, own int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.keys[key]
	if held > own && held+n > b.keyMax {
		return errKeyBudget
	}
	if b.node > own && b.node+n > b.nodeMax {
		return errNodeBudget
	}
	b.node += n
	b.keys[key] = held + n
	b.metrics.observeBodies(b.node)
	return nil
}

// give returns n bytes taken for key.
func (b *bodyBudget) give(key string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.node -= n
	b.metrics.observeBodies(b.node)
	if left := b.keys[key] - n; left > 0 {
		b.keys[key] = left
	} else {
		delete(b.keys, key)
	}
}

// bodyShare is one request's part of the budget.
type bodyShare struct {
	b     *bodyBudget
	key   string
	taken int64
}

// grow makes the share at least n bytes.
func (s *bodyShare) grow(n int64) error {
	if n <= s.taken {
		return nil
	}
	if err := s.b.take(s.key, n-s.taken, s.taken); err != nil {
		return err
	}
	s.taken = n
	return nil
}

func (s *bodyShare) release() {
	s.b.give(s.key, s.taken)
	s.taken = 0
}

func (m *Metrics) observeBodies(n int64) {
	if m != nil {
		m.bodyBytes.Set(float64(n))
	}
}
