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
	KeyID    string
	LedgerID int64 // 0 for the bootstrap key
	Role     Role
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
// revoked key stops working on every node within this time (SPEC: 5 s).
const keyCacheTTL = 2 * time.Second

type cachedKey struct {
	key     *ledgerd.APIKey // nil: no such key
	fetched time.Time
}

// authenticator verifies bearer keys against the bootstrap key and the
// api_keys table, with a short cache so a hot key costs no query.
type authenticator struct {
	db        keyStore
	bootstrap []byte // SHA-256 of LEDGERD_ADMIN_KEY
	mu        sync.RWMutex
	cache     map[string]cachedKey
}

func newAuthenticator(db keyStore, adminKey string) *authenticator {
	a := &authenticator{db: db, cache: map[string]cachedKey{}}
	if adminKey != "" {
		a.bootstrap = hashSecret(adminKey)
	}
	return a
}

// authenticate returns the principal of a bearer token, nil when the key is
// unknown, malformed or revoked, or an error when the database failed.
func (a *authenticator) authenticate(ctx context.Context, token string) (*principal, error) {
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
	a.mu.RLock()
	c, hit := a.cache[id]
	a.mu.RUnlock()
	if !hit || time.Since(c.fetched) > keyCacheTTL {
		k, err := a.db.APIKeyByID(ctx, id)
		if err != nil {
			return nil, err
		}
		c = cachedKey{key: k, fetched: time.Now()}
		a.mu.Lock()
		if len(a.cache) > 100_000 { // bound memory against floods of bogus ids
			clear(a.cache)
		}
		a.cache[id] = c
		a.mu.Unlock()
	}
	k := c.key
	if k == nil || k.RevokedAt != nil || subtle.ConstantTimeCompare(hashSecret(secret), k.SecretHash) != 1 {
		return nil, nil
	}
	return &principal{KeyID: k.ID, LedgerID: k.LedgerID, Role: parseRole(k.Role)}, nil
}

// forget drops a key from this node's cache (after a revocation here).
func (a *authenticator) forget(id string) {
	a.mu.Lock()
	delete(a.cache, id)
	a.mu.Unlock()
}
