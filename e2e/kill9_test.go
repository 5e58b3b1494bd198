package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// sentRequest is one transfer a client sent, recorded with its key and body
// before the first attempt, and what it was finally told.
type sentRequest struct {
	key, ref string
	tx       txRequest
	body     []byte
	round    int

	// First attempt.
	inDoubt bool // no answer, or 503: the outcome was open
	// Final, definite answer.
	status   int
	code     string // problem code of a refusal
	txID     string
	replayed bool
}

func (s *sentRequest) succeeded() bool {
	return s.status == http.StatusCreated || s.status == http.StatusOK
}

// settle records a definite answer.
func (s *sentRequest) settle(r *reply) error {
	s.status, s.replayed = r.status, r.replayed()
	switch r.status {
	case http.StatusCreated, http.StatusOK:
		if r.status == http.StatusOK && !s.replayed {
			return fmt.Errorf("200 without Idempotent-Replayed: %s", r)
		}
		var got txJSON
		if err := json.Unmarshal(r.body, &got); err != nil {
			return err
		}
		if got.ID == "" || got.ref() != s.ref || !slices.Equal(got.Postings, s.tx.Postings) {
			return fmt.Errorf("answer %s does not match the request %s", r, s.body)
		}
		s.txID = got.ID
	case http.StatusUnprocessableEntity:
		s.code = r.problem().Code
		if s.code != "insufficient_funds" {
			return fmt.Errorf("unexpected %s", r)
		}
	default:
		return fmt.Errorf("unexpected %s", r)
	}
	return nil
}

const (
	kill9Rounds   = 5
	kill9Clients  = 48
	kill9InFlight = 32 // requests in flight when the node is killed
)

// TestKill9 kills a `ledgerd serve` node with SIGKILL while at least 32
// requests are in flight, five times, and restarts it. Invariant 3: no
// acknowledged transaction is lost, nothing is stored that no client sent,
// nothing is half written. Invariant 4: the retries of the requests left
// in doubt (same key, same body) settle them exactly once — a 200 replay of
// the stored transaction when it had been committed — and stored outcomes
// replay after the restart.
func TestKill9(t *testing.T) { testKill9(t) }

// TestKill9Overlapped is TestKill9 with every batch overlapped with the one
// ahead (LEDGERD_COMMIT_OVERLAP_MIN=1), up to three at a time, so that the
// node dies with several batches of a ledger in flight on their own
// connections: one committing, the others inserting behind it and queued
// on the ordering lock.
func TestKill9Overlapped(t *testing.T) {
	testKill9(t, "LEDGERD_COMMIT_OVERLAP_MIN=1", "LEDGERD_COMMIT_OVERLAP_FLIGHTS=3")
}

func testKill9(t *testing.T, env ...string) {
	db := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	n := startNode(t, bin, "node", db, env...)
	fx := newFixture(t, n.URL(), "kill9", loadAccounts, 1_000_000_000)
	c := &client{base: n.URL(), key: fx.writeKey, hc: newHTTPClient(t)}
	admin := &client{base: n.URL(), key: ledgertest.AdminKey, hc: c.hc}
	ef := &errorf{t: t}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var (
		mu   sync.Mutex
		sent []*sentRequest
	)
	newRequest := func(rng *rand.Rand, round int) *sentRequest {
		src, dst := fx.pair(rng)
		amount := 1 + rng.Int64N(100)
		if rng.IntN(100) < 3 {
			amount = overdraft // refused, and the refusal is stored for replay
		}
		s := &sentRequest{key: newKey("k9key"), ref: newKey("k9ref"), round: round,
			tx: txRequest{Postings: []postingJSON{{Source: src, Destination: dst, Amount: amount, Asset: fx.asset}}}}
		s.tx.Reference = s.ref
		s.body = mustJSONNoFail(s.tx)
		mu.Lock()
		sent = append(sent, s)
		mu.Unlock()
		return s
	}

	var answers statusLog
	for round := range kill9Rounds {
		// Clients post until the node dies under them; each stops at its
		// first request without a definite answer.
		var inFlight atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range kill9Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(round*1000+w)))
				for !stop.Load() {
					s := newRequest(rng, round)
					inFlight.Add(1)
					r, err := c.do(context.Background(), http.MethodPost, txPath(fx.ledger), s.body, s.key)
					inFlight.Add(-1)
					answers.add(r, err)
					if indefinite(r, err) {
						s.inDoubt = true
						return
					}
					if err := s.settle(r); err != nil {
						ef.Errorf("round %d, %s: %v", round, s.key, err)
						return
					}
				}
			}()
		}
		// Let some commits happen, then kill at a moment with enough
		// requests in flight.
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		deadline := time.Now().Add(20 * time.Second)
		for inFlight.Load() < kill9InFlight && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		flying := inFlight.Load()
		n.kill9()
		stop.Store(true)
		wg.Wait()
		if flying < kill9InFlight {
			t.Fatalf("round %d: only %d requests in flight after 20 s", round, flying)
		}
		n.start()

		// Settle every request left in doubt: each client retries its own
		// as it was sent, all at once. Before that, look each up by its
		// reference: if the first attempt was committed, the retry must
		// replay exactly that transaction.
		var doubtful []*sentRequest
		var acked int
		for _, s := range sent {
			switch {
			case s.round != round:
			case s.inDoubt:
				doubtful = append(doubtful, s)
			case s.succeeded():
				acked++
			}
		}
		stored := make([]string, len(doubtful))
		for i, s := range doubtful {
			var found struct {
				Data []txJSON `json:"data"`
			}
			admin.getJSON(t, txPath(fx.ledger)+"?reference="+url.QueryEscape(s.ref), &found)
			if len(found.Data) > 0 {
				stored[i] = found.Data[0].ID
			}
		}
		for _, s := range doubtful {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				r, attempts, err := c.send(ctx, txPath(fx.ledger), s.body, s.key, answers.add)
				if err != nil {
					ef.Errorf("round %d: request %s stays in doubt after the restart: %v", round, s.key, err)
					return
				}
				if err := s.settle(r); err != nil {
					ef.Errorf("round %d: retry of %s after %d attempts: %v", round, s.key, attempts, err)
				}
			}()
		}
		wg.Wait()
		committed := 0
		for i, s := range doubtful {
			if s.status == 0 {
				t.Fatalf("round %d: %s has no definite answer", round, s.key)
			}
			if stored[i] != "" {
				committed++
				if !s.replayed || s.txID != stored[i] {
					ef.Errorf("idempotency: %s was committed before the kill as %s, but its retry answered %d (replayed %v) with %q",
						s.key, stored[i], s.status, s.replayed, s.txID)
				}
			}
		}
		inDoubt := len(doubtful)
		t.Logf("round %d: killed with %d requests in flight; %d acknowledged before the kill; %d in doubt, of which %d had been committed",
			round, flying, acked, inDoubt, committed)
		if inDoubt == 0 {
			ef.Errorf("round %d: no request was in doubt, the kill hit nothing", round)
		}

		// Outcomes stored before the kill replay after it: the round's last
		// 32 definite answers (the commits closest to the kill) and all its
		// refusals, sent again with the same key and body.
		replays := 0
		for i := len(sent) - 1; i >= 0; i-- {
			s := sent[i]
			if s.round != round || s.inDoubt || s.status == 0 || (replays >= 32 && s.succeeded()) {
				continue
			}
			replays++
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			r, _, err := c.send(ctx, txPath(fx.ledger), s.body, s.key, answers.add)
			cancel()
			if err != nil {
				t.Fatalf("replay of %s: %v", s.key, err)
			}
			wantStatus := s.status
			if wantStatus == http.StatusCreated {
				wantStatus = http.StatusOK
			}
			var got txJSON
			_ = json.Unmarshal(r.body, &got)
			if r.status != wantStatus || !r.replayed() || (s.succeeded() && got.ID != s.txID) ||
				(!s.succeeded() && r.problem().Code != s.code) {
				ef.Errorf("idempotency: %s was answered %d %s %s before the kill; after the restart its replay is %s",
					s.key, s.status, s.code, s.txID, r)
			}
		}
	}
	t.Logf("answers: %s", answers.String())
	if len(answers.failures) > 0 {
		t.Errorf("5xx other than 503: %q", answers.failures)
	}

	// Every request has a definite outcome now, so the ledger must hold
	// exactly the setup and the successes.
	var ok int64
	byRef := map[string]*sentRequest{}
	for _, s := range sent {
		byRef[s.ref] = s
		if s.succeeded() {
			ok++
		}
	}
	st := checkInvariants(t, n.URL(), fx.ledger, fx.setupTx+ok)

	// Everything stored was sent, as it was sent, by a client that was
	// told so (or has not been told anything else).
	for i := range st.Txs {
		tx := &st.Txs[i]
		if tx.Sequence <= fx.setupTx {
			continue
		}
		s := byRef[tx.ref()]
		switch {
		case s == nil:
			ef.Errorf("durability: stored transaction %d (%s, reference %q) was never sent", tx.Sequence, tx.ID, tx.ref())
		case !s.succeeded() || s.txID != tx.ID:
			ef.Errorf("durability: stored transaction %d (%s) belongs to %s, which was told %d %s %q", tx.Sequence, tx.ID, s.key, s.status, s.code, s.txID)
		case !slices.Equal(tx.Postings, s.tx.Postings):
			ef.Errorf("durability: stored transaction %d has postings %+v, %s sent %+v", tx.Sequence, tx.Postings, s.key, s.tx.Postings)
		}
	}
	// Every acknowledged transaction is there exactly once: by id, and by
	// its reference.
	for _, s := range sent {
		if !s.succeeded() {
			if st.ByRef[s.ref] != nil {
				ef.Errorf("durability: %s was refused (%s) but is stored as %s", s.key, s.code, st.ByRef[s.ref].ID)
			}
			continue
		}
		var got txJSON
		admin.getJSON(t, txPath(fx.ledger)+"/"+s.txID, &got)
		var byRefList struct {
			Data []txJSON `json:"data"`
		}
		admin.getJSON(t, txPath(fx.ledger)+"?reference="+url.QueryEscape(s.ref), &byRefList)
		if got.ID != s.txID || got.ref() != s.ref || len(byRefList.Data) != 1 || byRefList.Data[0].ID != s.txID {
			ef.Errorf("durability: acknowledged %s (%s): GET by id gave %s/%q, by reference %d transactions",
				s.key, s.txID, got.ID, got.ref(), len(byRefList.Data))
		}
	}
}
