package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/pgcluster"
	"github.com/ledgerd/ledgerd/postgres"
)

// replicaEnv starts a streaming replica of the test cluster, delayed by
// delay, and a node reading from it.
func replicaEnv(t *testing.T, delay time.Duration) (*ledgertest.Env, *pgcluster.Cluster) {
	t.Helper()
	c := ledgertest.Cluster(t)
	if c == nil {
		t.Skip("needs the test cluster (DATABASE_URL is set)")
	}
	dbURL := ledgertest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := c.StartReplica(ctx, pgcluster.ReplicaOptions{ApplyDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Stop() })
	e := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, Replicas: &postgres.ReplicaConfig{
		URLs: []string{rep.URL(strings.TrimPrefix(u.Path, "/"))}, MaxConns: 4, Wait: 10 * time.Millisecond}})
	return e, rep
}

func balanceOf(t *testing.T, e *ledgertest.Env, ledger, account string, headers ...string) int64 {
	t.Helper()
	r := e.Do("GET", "/v1/ledgers/"+ledger+"/accounts/"+account, admin, nil, headers...).Expect(t, 200)
	var n int64
	if _, err := fmt.Sscan(fmt.Sprint(r.JSON()["balance"].(map[string]any)["posted"]), &n); err != nil {
		t.Fatalf("posted of %s: %v", r.Body, err)
	}
	return n
}

// A read that sends back a write's Consistency-Token sees the write, even
// with the replica half a second behind; one without may be served stale
// (which shows that reads do go to the replica).
func TestReplicaReadYourWrites(t *testing.T) {
	e, _ := replicaEnv(t, 500*time.Millisecond)
	l := e.Ledger("ryw")
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", nil)
	stale := 0
	for i := 1; i <= 20; i++ {
		w := e.Transfer(l, "world", "a", 1, "USD").Expect(t, 201)
		tok := w.Header.Get("Consistency-Token")
		if _, err := ledgerd.ParseToken(tok); err != nil {
			t.Fatalf("write answered token %q: %v", tok, err)
		}
		if got := balanceOf(t, e, l, "a", "Consistency-Token", tok); got != int64(i) {
			t.Fatalf("read with the token after transfer %d saw balance %d", i, got)
		}
		id := w.JSON()["id"].(string)
		e.Do("GET", "/v1/ledgers/"+l+"/transactions/"+id, admin, nil, "Consistency-Token", tok).Expect(t, 200)
		// Stale: the account not there yet (404), or an older balance.
		if r := e.Do("GET", "/v1/ledgers/"+l+"/accounts/a", admin, nil); r.Status == 404 ||
			r.Expect(t, 200).JSON()["balance"].(map[string]any)["posted"].(json.Number).String() != fmt.Sprint(i) {
			stale++
		}
	}
	if stale == 0 {
		t.Fatal("no read without a token was ever stale: reads do not reach the delayed replica")
	}
	t.Logf("%d of 20 reads without a token were stale", stale)
	// Once the replica has replayed past a token it serves that token's
	// reads: with a newer transfer still delayed there, a read with the
	// older token answers the balance as of that token.
	tok := e.Transfer(l, "world", "a", 1, "USD").Expect(t, 201).Header.Get("Consistency-Token")
	time.Sleep(1500 * time.Millisecond)
	e.Transfer(l, "world", "a", 1, "USD").Expect(t, 201)
	if got := balanceOf(t, e, l, "a", "Consistency-Token", tok); got != 21 {
		t.Fatalf("read with a caught-up token saw %d, want the replica's 21", got)
	}
}

// A replica that stops answering never fails a read: the primary serves it.
func TestReplicaDownReadsSucceed(t *testing.T) {
	e, rep := replicaEnv(t, 0)
	l := e.Ledger("down")
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", nil)
	tok := e.Transfer(l, "world", "a", 5, "USD").Expect(t, 201).Header.Get("Consistency-Token")
	if err := rep.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := balanceOf(t, e, l, "a"); got != 5 {
			t.Fatalf("balance %d, want 5", got)
		}
		if got := balanceOf(t, e, l, "a", "Consistency-Token", tok); got != 5 {
			t.Fatalf("balance %d, want 5", got)
		}
		e.Do("GET", "/v1/ledgers/"+l+"/transactions", admin, nil).Expect(t, 200)
	}
}

// A token this service did not issue is 422 naming the header; writes
// answer a token whatever they are.
func TestConsistencyTokenContract(t *testing.T) {
	e := ledgertest.Start(t, ledgertest.Options{})
	l := e.Ledger("tok")
	e.Account(l, "world", "USD", nil)
	created := e.Do("POST", "/v1/ledgers/"+l+"/accounts", admin, map[string]any{"id": "b", "asset": "USD"}).Expect(t, 201)
	tok := created.Header.Get("Consistency-Token")
	if _, err := ledgerd.ParseToken(tok); err != nil {
		t.Fatalf("account creation answered token %q", tok)
	}
	e.Do("GET", "/v1/ledgers/"+l+"/accounts/b", admin, nil, "Consistency-Token", tok).Expect(t, 200)
	for _, bad := range []string{"0/16B3748", "v1.x", "v1.AAAAAAFrN0g=="} {
		r := e.Do("GET", "/v1/ledgers/"+l+"/accounts/b", admin, nil, "Consistency-Token", bad).Expect(t, 422, "validation_failed")
		if !strings.Contains(string(r.Body), "Consistency-Token") {
			t.Fatalf("422 does not name the header: %s", r.Body)
		}
	}
	if r := e.Do("GET", "/v1/ledgers/"+l+"/accounts/b", admin, nil); r.Header.Get("Consistency-Token") != "" {
		t.Fatal("a read answered a token")
	}
	if r := e.Transfer(l, "world", "b", 0, "USD"); r.Status < 300 || r.Header.Get("Consistency-Token") != "" {
		t.Fatalf("a rejected write answered %d with token %q", r.Status, r.Header.Get("Consistency-Token"))
	}
}
