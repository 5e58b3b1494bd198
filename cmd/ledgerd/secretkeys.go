package main

import (
	"fmt"
	"log/slog"

	"github.com/ledgerd/ledgerd/atrest"
)

// secretKeys are the keys that seal webhook signing secrets at rest
// (package atrest): every API node and worker of a database needs the same
// ones, since a node creates and rotates secrets and a worker signs with
// them.
type secretKeys struct {
	Current, Old string
	keys         *atrest.Keys
}

func (s *secretKeys) bind(b *binder) {
	b.secret(&s.Current, "secret-key", "LEDGERD_SECRET_KEY",
		"base64 of a 32-byte key that encrypts webhook signing secrets in the database (empty: stored in plaintext; see docs/configuration.md)", maskKey)
	b.secret(&s.Old, "secret-keys", "LEDGERD_SECRET_KEYS",
		"comma-separated base64 keys used before LEDGERD_SECRET_KEY: secrets they encrypted still open", maskKey)
}

func (s *secretKeys) parse() error {
	k, err := atrest.Parse(s.Current, s.Old)
	if err != nil {
		// The error names which key is wrong, never its value.
		return fmt.Errorf("LEDGERD_SECRET_KEY / LEDGERD_SECRET_KEYS: %w", err)
	}
	s.keys = k
	return nil
}

// warn logs, once at start, that new webhook secrets will be stored in
// plaintext, or which key seals them.
func (s *secretKeys) warn(log *slog.Logger) {
	if s.keys == nil {
		log.Warn("LEDGERD_SECRET_KEY is not set: webhook signing secrets are stored in the database in plaintext " +
			"(set it to the base64 of 32 random bytes, e.g. from `openssl rand -base64 32`, on every node and worker)")
		return
	}
	log.Info("webhook signing secrets are encrypted at rest", "key_id", s.keys.CurrentID())
}
