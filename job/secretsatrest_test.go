package job_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/atrest"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// storedSecrets reads an endpoint's secret columns as the database holds
// them.
func storedSecrets(t *testing.T, e *ledgertest.Env, id string) (secret, previous string) {
	t.Helper()
	err := e.DB.Pool.QueryRow(context.Background(), `SELECT secret, coalesce(previous_secret, '') FROM webhook_endpoints WHERE id = $1`,
		id).Scan(&secret, &previous)
	if err != nil {
		t.Fatal(err)
	}
	return secret, previous
}

// TestWebhookSecretsEncryptedAtRest: with LEDGERD_SECRET_KEY set, the
// secret column holds neither the secret created through the API nor the
// one a rotation returns, yet deliveries verify with them; an endpoint
// stored in plaintext before keys were set keeps working; and after the
// key rotates (the old key kept among LEDGERD_SECRET_KEYS) a worker still
// opens what the old key sealed, the rotated-out secret included.
func TestWebhookSecretsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, atrest.KeySize), bytes.Repeat([]byte{2}, atrest.KeySize)
	oldKeys, err := atrest.New(k1)
	if err != nil {
		t.Fatal(err)
	}
	plainNode := ledgertest.Start(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(t, plainNode, "atrest")
	legacyRecv, sealedRecv := newReceiver(t), newReceiver(t)
	legacyID, legacySecret := endpoint(t, plainNode, l, legacyRecv.URL())
	if s, _ := storedSecrets(t, plainNode, legacyID); s != legacySecret {
		t.Fatalf("without keys the column holds %q, want the plaintext secret", s)
	}

	node := ledgertest.Start(t, ledgertest.Options{DatabaseURL: plainNode.DatabaseURL, WebhookAllowPrivate: true, SecretKeys: oldKeys})
	sealedID, firstSecret := endpoint(t, node, l, sealedRecv.URL())
	s, _ := storedSecrets(t, node, sealedID)
	if s == firstSecret || !strings.HasPrefix(s, atrest.Prefix+atrest.KeyID(k1)+":") ||
		strings.Contains(s, strings.TrimPrefix(firstSecret, "whsec_")) {
		t.Fatalf("the column holds %q for secret %q: not sealed under the key", s, firstSecret)
	}
	m := node.Do("POST", hooksPath(l)+"/"+sealedID+"/rotate-secret", admin, nil).Expect(t, 200).JSON()
	rotated := m["secret"].(string)
	s, prev := storedSecrets(t, node, sealedID)
	for _, c := range []struct{ stored, secret string }{{s, rotated}, {prev, firstSecret}} {
		if !atrest.Sealed(c.stored) || strings.Contains(c.stored, strings.TrimPrefix(c.secret, "whsec_")) {
			t.Fatalf("after rotation a column holds %q: not sealed", c.stored)
		}
	}

	// The key rotates: the worker seals with k2 and still opens k1's.
	newKeys, err := atrest.Parse(base64.StdEncoding.EncodeToString(k2), base64.StdEncoding.EncodeToString(k1))
	if err != nil {
		t.Fatal(err)
	}
	legacyRecv.setSecrets(legacySecret)
	// Only the rotated-out secret: its signature verifies only if
	// previous_secret opened (during the grace period both sign).
	sealedRecv.setSecrets(firstSecret)
	startWorkerKeys(t, node, job.Config{}, newKeys)
	want := map[string]bool{}
	for range 5 {
		want[transfer(t, node, l)] = true
	}
	for _, r := range []*receiver{legacyRecv, sealedRecv} {
		waitFor(t, 20*time.Second, "every event delivered and verified", func() bool { return len(r.ids()) >= len(want) })
		for id := range r.ids() {
			if !want[id] {
				t.Errorf("unexpected event %s", id)
			}
		}
		if r.badCount() != 0 {
			t.Fatalf("%d deliveries failed verification", r.badCount())
		}
	}
	sealedRecv.setSecrets(rotated)
	want2 := transfer(t, node, l)
	waitFor(t, 20*time.Second, "a delivery verified with the current secret", func() bool { return sealedRecv.ids()[want2] > 0 })
	if sealedRecv.badCount() != 0 {
		t.Fatalf("%d deliveries failed verification with the current secret", sealedRecv.badCount())
	}
}
