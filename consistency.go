package ledgerd

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Position is a point in the primary database's history (for PostgreSQL,
// a WAL location): data "at least as new as a write" is data of a server
// that has replayed past the write's Position. 0 is no position.
type Position uint64

// tokenPrefix versions the Consistency-Token encoding, so that a later
// encoding (several primaries, say) can tell old tokens from new ones.
const tokenPrefix = "v1."

// ErrBadToken is a Consistency-Token this service did not issue.
var ErrBadToken = errors.New("malformed consistency token")

// Token renders p as an opaque Consistency-Token: clients send it back
// verbatim and must not read anything into it.
func (p Position) Token() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(p))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseToken reads a Consistency-Token back.
func ParseToken(s string) (Position, error) {
	if len(s) != len(tokenPrefix)+11 || s[:len(tokenPrefix)] != tokenPrefix {
		return 0, ErrBadToken
	}
	var b [8]byte
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(s[len(tokenPrefix):]))
	if err != nil || n != 8 {
		return 0, ErrBadToken
	}
	return Position(binary.BigEndian.Uint64(b[:])), nil
}

type readAfterKey struct{}

// WithReadAfter marks ctx's reads as needing data at least as new as p.
func WithReadAfter(ctx context.Context, p Position) context.Context {
	return context.WithValue(ctx, readAfterKey{}, p)
}

// ReadAfter is the position ctx's reads must have reached (0: any).
func ReadAfter(ctx context.Context) Position {
	p, _ := ctx.Value(readAfterKey{}).(Position)
	return p
}
