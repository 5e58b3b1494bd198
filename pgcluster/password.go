package pgcluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hbaConf replaces initdb's trust rules when Options.Password is set: any
// local user could otherwise connect as the superuser over loopback TCP or
// the socket.
const hbaConf = `# Written by pgcluster at every start (Options.Password): every
# connection authenticates as a role with a password. Edits are overwritten.
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
`

// requirePassword makes the cluster password-only before the server
// starts: it sets the postgres role's password in single-user mode (which
// needs no authentication, so a cluster created with trust, or whose
// password changed, is brought in line) and rewrites pg_hba.conf.
func (c *Cluster) requirePassword(ctx context.Context) error {
	verifier, err := scramVerifier(c.password)
	if err != nil {
		return err
	}
	// The verifier, not the password, goes to the server: nothing it logs
	// can reveal the password.
	sql := "ALTER ROLE postgres PASSWORD '" + verifier + "';\n"
	var out bytes.Buffer
	cmd := c.command(ctx, "postgres", "--single", "-D", c.DataDir, "postgres")
	cmd.Stdin = strings.NewReader(sql)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgcluster: set the postgres password (single-user mode): %w\n%s", err, strings.TrimSpace(out.String()))
	}
	if strings.Contains(out.String(), "ERROR:") {
		return fmt.Errorf("pgcluster: set the postgres password (single-user mode):\n%s", strings.TrimSpace(out.String()))
	}
	path := filepath.Join(c.DataDir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// scramVerifier returns PostgreSQL's stored form of a SCRAM-SHA-256
// password (RFC 5802/7677, as pg_authid.rolpassword holds it). The
// password is used as is, without SASLprep: ASCII passwords need none.
func scramVerifier(password string) (string, error) {
	const iterations = 4096 // PostgreSQL's default scram_iterations
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}
