package httpapi

import (
	"encoding/hex"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"

	"github.com/ledgerd/ledgerd"
)

// Response caching (docs/api.md §Conventions, conditional reads).
// Reads of accounts and transactions carry a strong ETag of their bytes and
// answer 304 to a matching If-None-Match. Transactions that can no longer
// change are also kept encoded in memory: a hot read of such a
// transaction costs neither a query nor an encode. Balances are never
// cached: an account read always goes to the database.

func etag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	var b [8]byte
	return `"` + hex.EncodeToString(h.Sum(b[:0])) + `"`
}

// writeCacheable answers 200 with body and its ETag, or 304 when the client
// already has these bytes.
func writeCacheable(w http.ResponseWriter, r *http.Request, body []byte) {
	tag := etag(body)
	h := w.Header()
	h.Set("ETag", tag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func etagMatch(header, tag string) bool {
	for i := 0; i < len(header); {
		for i < len(header) && (header[i] == ' ' || header[i] == ',') {
			i++
		}
		j := i
		for j < len(header) && header[j] != ',' {
			j++
		}
		c := header[i:j]
		for len(c) > 0 && c[len(c)-1] == ' ' {
			c = c[:len(c)-1]
		}
		if c == "*" || c == tag || c == "W/"+tag {
			return true
		}
		i = j
	}
	return false
}

// immutable reports whether t can never change again: a resolved hold, a
// void or expiry, a reversal, or a transaction already reversed.
func immutable(t *ledgerd.Transaction) bool {
	return t.ResolvedBy != "" || t.ReversedBy != "" || t.Reverses != "" ||
		t.Status == ledgerd.StatusVoided || t.Status == ledgerd.StatusExpired
}

// txCache holds the encoded bytes of immutable transactions, bounded, with
// first-in first-out eviction (entries never go stale, so recency matters
// little).
type txCache struct {
	mu    sync.Mutex
	items map[txKey][]byte
	order []txKey
	next  int
}

type txKey struct {
	ledger int64
	id     string
}

const txCacheSize = 50_000

func newTxCache() *txCache {
	return &txCache{items: make(map[txKey][]byte), order: make([]txKey, txCacheSize)}
}

func (c *txCache) get(ledger int64, id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[txKey{ledger, id}]
}

func (c *txCache) put(ledger int64, id string, body []byte) {
	k := txKey{ledger, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	if old := c.order[c.next]; old.id != "" {
		delete(c.items, old)
	}
	c.order[c.next] = k
	c.next = (c.next + 1) % len(c.order)
	c.items[k] = body
}
