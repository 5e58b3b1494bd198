package httpapi

import (
	"errors"
	"sync"
)

// Default budgets for request bodies held in memory at once. A node with the
// suggested 512 MiB container limit idles near 110 MiB; twelve 15.5 MB
// batches from one key once took it to 456 MiB, because each body is held
// (with its decoded form and its results) until the answer is written.
// 64 MiB of bodies per node, 32 MiB per key, keeps the worst case well
// inside the limit while still admitting two full 16 MiB batches per key.
const (
	DefaultBodyBudget    = 64 << 20
	DefaultKeyBodyBudget = 32 << 20
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

// take reserves n more bytes for key, or reports which budget refused them.
// A request larger than a whole budget is still admitted when nothing else
// holds that budget, so no valid request is refused forever.
func (b *bodyBudget) take(key string, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.keys[key]
	if held > 0 && held+n > b.keyMax {
		return errKeyBudget
	}
	if b.node > 0 && b.node+n > b.nodeMax {
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
	if err := s.b.take(s.key, n-s.taken); err != nil {
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
