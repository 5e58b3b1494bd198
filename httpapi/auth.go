package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"golang.org/x/time/rate"
)

// Role orders what a key may do; each role includes the ones below it.
type Role int

// Roles. RoleBootstrap is the operator's key from LEDGERD_ADMIN_KEY: every
// ledger, and the only one that creates ledgers.
const (
	RoleNone Role = iota
	RoleRead
	RoleWrite
	RoleAdmin
	RoleBootstrap
)

func parseRole(s string) Role {
	switch s {
	case "read":
		return RoleRead
	case "write":
		return RoleWrite
	case "admin":
		return RoleAdmin
	}
	return RoleNone
}

// principal is who a request is from.
type principal struct {
	KeyID      string
	LedgerID   int64  // 0 for the bootstrap key
	LedgerName string // "" for the bootstrap key
	Role       Role
	// Limit is the key's own rate limit; the zero value means the node's
	// default. It is as fresh as the key cache (keyCacheTTL).
	Limit ledgerd.RateLimit
}

func (p *principal) canSee(ledgerID int64) bool {
	return p.Role == RoleBootstrap || p.LedgerID == ledgerID
}

// API keys look like ldk_<16 hex id>_<64 hex secret>. Only the id and a
// SHA-256 of the secret are stored; the secret is 256 random bits, so a
// fast hash is as good as a slow one.
const keyPrefix = "ldk_"

func newAPIKey() (id, secret, full string) {
	var b [40]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:8])
	secret = hex.EncodeToString(b[8:])
	return id, secret, keyPrefix + id + "_" + secret
}

func splitKey(k string) (id, secret string, ok bool) {
	if !strings.HasPrefix(k, keyPrefix) || len(k) != len(keyPrefix)+16+1+64 || k[len(keyPrefix)+16] != '_' {
		return "", "", false
	}
	return k[len(keyPrefix) : len(keyPrefix)+16], k[len(keyPrefix)+17:], true
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// keyCacheTTL bounds how long a node trusts what it read of a key: a
// revoked key stops working, and a key's changed rate limit applies, on
// every node within this time (docs/api.md §Authentication: 5 s). An id
// found missing is remembered as long, so a key created on another node
// works here within it too.
const keyCacheTTL = 2 * time.Second

// Bounds of the key caches. Only ids the database holds enter the cache of
// known keys, so it grows with the keys an operator creates, not with what
// clients send; missing ids go to a separate, smaller cache.
const (
	maxKnownKeys   = 100_000
	maxUnknownKeys = 50_000
)

type cachedKey struct {
	key     *ledgerd.APIKey
	fetched time.Time
}

// authThrottledError refuses a lookup of an id this node has not seen, for a
// client address that has failed too often.
type authThrottledError struct{ wait time.Duration }

func (e authThrottledError) Error() string {
	return "too many failed authentications from this address"
}

// authenticator verifies bearer keys against the bootstrap key and the
// api_keys table, with a short cache so a hot key costs no query.
type authenticator struct {
	db        keyStore
	bootstrap []byte // SHA-256 of LEDGERD_ADMIN_KEY
	mu        sync.RWMutex
	known     map[string]cachedKey // ids the database holds (revoked ones too)
	unknown   *negCache
	fails     *addrLimiter
}

func newAuthenticator(db keyStore, adminKey string, fails *addrLimiter) *authenticator {
	a := &authenticator{db: db, known: map[string]cachedKey{}, unknown: newNegCache(keyCacheTTL, maxUnknownKeys), fails: fails}
	if adminKey != "" {
		a.bootstrap = hashSecret(adminKey)
	}
	return a
}

// authenticate returns the principal of a bearer token, nil when the key is
// unknown, malformed or revoked, authThrottledError when it would need a
// lookup the client's address may not have now, or an error when the
// database failed. addr is the client address failures count against.
func (a *authenticator) authenticate(ctx context.Context, token, addr string) (*principal, error) {
	if token == "" {
		return nil, nil
	}
	if a.bootstrap != nil && subtle.ConstantTimeCompare(hashSecret(token), a.bootstrap) == 1 {
		return &principal{KeyID: "bootstrap", Role: RoleBootstrap}, nil
	}
	id, secret, ok := splitKey(token)
	if !ok {
		return nil, nil
	}
	k, err := a.lookup(ctx, id, addr)
	if err != nil {
		return nil, err
	}
	if k == nil || k.RevokedAt != nil || subtle.ConstantTimeCompare(hashSecret(secret), k.SecretHash) != 1 {
		return nil, nil
	}
	p := &principal{KeyID: k.ID, LedgerID: k.LedgerID, LedgerName: k.LedgerName, Role: parseRole(k.Role)}
	if k.RateLimit != nil {
		p.Limit = *k.RateLimit
	}
	return p, nil
}

// lookup returns the key with id (nil when there is none). An id this node
// knows is refreshed after keyCacheTTL whoever asks; an id it has not seen
// costs a query only while the asking address has tokens left.
func (a *authenticator) lookup(ctx context.Context, id, addr string) (*ledgerd.APIKey, error) {
	a.mu.RLock()
	c, known := a.known[id]
	a.mu.RUnlock()
	if known && time.Since(c.fetched) <= keyCacheTTL {
		return c.key, nil
	}
	if !known && a.unknown.has(id) {
		return nil, nil
	}
	var res *rate.Reservation
	if !known {
		var wait time.Duration
		if res, wait = a.fails.reserve(addr); res == nil {
			return nil, authThrottledError{wait}
		}
	}
	k, err := a.db.APIKeyByID(ctx, id)
	if err != nil {
		if res != nil {
			res.Cancel() // the database failed, not the client
		}
		return nil, err
	}
	if k == nil {
		a.unknown.add(id)
		a.mu.Lock()
		delete(a.known, id)
		a.mu.Unlock()
		return nil, nil
	}
	if res != nil {
		res.Cancel() // a real key is no failure
	}
	a.mu.Lock()
	if len(a.known) >= maxKnownKeys {
		for kid, c := range a.known {
			if time.Since(c.fetched) > time.Minute {
				delete(a.known, kid)
			}
		}
	}
	if len(a.known) < maxKnownKeys {
		a.known[id] = cachedKey{key: k, fetched: time.Now()}
	}
	a.mu.Unlock()
	a.unknown.remove(id)
	return k, nil
}

// forget drops what this node cached of a key id, after it revoked or
// created the key.
func (a *authenticator) forget(id string) {
	a.mu.Lock()
	delete(a.known, id)
	a.mu.Unlock()
	a.unknown.remove(id)
}
