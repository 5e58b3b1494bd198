package e2e

import (
	"fmt"
	"math/big"
	"net/url"
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

// ledgerState is what checkInvariants read of a ledger through the API.
type ledgerState struct {
	LastSequence int64
	Txs          []txJSON // in sequence order: Txs[i].Sequence == i+1 when the log is sound
	ByID         map[string]*txJSON
	ByRef        map[string]*txJSON
	Accounts     map[string]*accountJSON
}

// checkInvariants audits a quiescent ledger through the public API (with
// the bootstrap key) and reports every violation of docs/api.md §Invariants it can see:
//
//   - order (5): GET …/transactions?after=…&limit=1000 lists sequences
//     exactly 1..N without a gap or a duplicate, created_at never
//     decreases, N is the ledger's last_sequence, and N is expectedTx
//     (skipped when expectedTx < 0);
//   - double entry (1): per asset, the posted balances of all accounts
//     (listed page by page) sum to 0;
//   - constraints (2): no account's available is below its min_balance;
//   - nothing partial: every account's posted balance and pending totals
//     equal what the listed transactions' postings add up to, and (when
//     the log holds no two-phase transactions) its version equals the
//     number of transactions that touched it; every posting names listed
//     accounts of the posting's asset.
//
// It returns what it read, for the caller's own checks.
func checkInvariants(t testing.TB, baseURL, ledger string, expectedTx int64) *ledgerState {
	t.Helper()
	c := &client{base: baseURL, key: ledgertest.AdminKey, hc: newHTTPClient(t)}
	lp := "/v1/ledgers/" + url.PathEscape(ledger)
	var l ledgerJSON
	c.getJSON(t, lp, &l)
	st := &ledgerState{LastSequence: l.LastSequence, ByID: map[string]*txJSON{}, ByRef: map[string]*txJSON{},
		Accounts: map[string]*accountJSON{}}

	// The log, tailed the way a consumer would.
	var after int64
	for {
		var page struct {
			Data       []txJSON `json:"data"`
			NextCursor *string  `json:"next_cursor"`
		}
		c.getJSON(t, fmt.Sprintf("%s/transactions?after=%d&limit=1000", lp, after), &page)
		for _, tx := range page.Data {
			if tx.Sequence != after+1 {
				t.Errorf("order: after sequence %d the log continues with %d (a gap, a duplicate or disorder)", after, tx.Sequence)
			}
			if n := len(st.Txs); n > 0 && tx.CreatedAt.Before(st.Txs[n-1].CreatedAt) {
				t.Errorf("order: created_at decreases from sequence %d (%v) to %d (%v)",
					st.Txs[n-1].Sequence, st.Txs[n-1].CreatedAt, tx.Sequence, tx.CreatedAt)
			}
			after = max(after, tx.Sequence)
			st.Txs = append(st.Txs, tx)
		}
		if len(page.Data) == 0 || page.NextCursor == nil {
			break
		}
	}
	for i := range st.Txs {
		tx := &st.Txs[i]
		if st.ByID[tx.ID] != nil {
			t.Errorf("transaction %s is listed twice", tx.ID)
		}
		st.ByID[tx.ID] = tx
		if ref := tx.ref(); ref != "" {
			if st.ByRef[ref] != nil {
				t.Errorf("reference %q is used by two transactions", ref)
			}
			st.ByRef[ref] = tx
		}
	}
	n := int64(len(st.Txs))
	if n != l.LastSequence || (n > 0 && st.Txs[n-1].Sequence != n) {
		t.Errorf("order: the log lists %d transactions up to sequence %d, but last_sequence is %d", n, after, l.LastSequence)
	}
	if expectedTx >= 0 && n != expectedTx {
		t.Errorf("durability/idempotency: the ledger holds %d transactions, the clients were answered for %d", n, expectedTx)
	}

	// Accounts, page by page (the pages need not be one snapshot: the
	// ledger is quiescent).
	sums := map[string]*big.Int{}
	cursor := ""
	for {
		var page struct {
			Data       []accountJSON `json:"data"`
			NextCursor *string       `json:"next_cursor"`
		}
		p := lp + "/accounts?limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		c.getJSON(t, p, &page)
		for i := range page.Data {
			a := &page.Data[i]
			if st.Accounts[a.ID] != nil {
				t.Errorf("account %s is listed twice", a.ID)
			}
			st.Accounts[a.ID] = a
			if sums[a.Asset] == nil {
				sums[a.Asset] = new(big.Int)
			}
			sums[a.Asset].Add(sums[a.Asset], big.NewInt(a.Balance.Posted))
			if a.MinBalance != nil && a.Balance.Available < *a.MinBalance {
				t.Errorf("constraints: account %s has available %d below its min_balance %d", a.ID, a.Balance.Available, *a.MinBalance)
			}
			if a.Balance.Available != a.Balance.Posted-a.Balance.PendingDebits {
				t.Errorf("account %s: available %d is not posted %d − pending_debits %d", a.ID, a.Balance.Available, a.Balance.Posted, a.Balance.PendingDebits)
			}
		}
		if page.NextCursor == nil || len(page.Data) == 0 {
			break
		}
		cursor = *page.NextCursor
	}
	for asset, s := range sums {
		if s.Sign() != 0 {
			t.Errorf("double entry: the posted balances of asset %s sum to %s, not 0", asset, s)
		}
	}

	// Recompute every balance from the log.
	type totals struct{ posted, pd, pc, touched int64 }
	want := map[string]*totals{}
	get := func(id string) *totals {
		if want[id] == nil {
			want[id] = &totals{}
		}
		return want[id]
	}
	twoPhase := false
	for i := range st.Txs {
		tx := &st.Txs[i]
		if tx.PendingID != "" || tx.ResolvedBy != "" || tx.Status != "posted" {
			twoPhase = true
		}
		touched := map[string]bool{}
		for j, p := range tx.Postings {
			for _, id := range []string{p.Source, p.Destination} {
				touched[id] = true
				a := st.Accounts[id]
				switch {
				case a == nil:
					t.Errorf("transaction %d posting %d names account %q, which is not listed", tx.Sequence, j, id)
				case a.Asset != p.Asset:
					t.Errorf("transaction %d posting %d moves %s through account %s of asset %s", tx.Sequence, j, p.Asset, id, a.Asset)
				}
			}
			if p.Amount <= 0 {
				t.Errorf("transaction %d posting %d has amount %d", tx.Sequence, j, p.Amount)
			}
			switch {
			case tx.Status == "posted" && tx.ResolvedBy == "":
				// An ordinary transaction, a capture or a reversal: it moved
				// posted. (A captured hold is "captured": its capture did
				// the moving.)
				get(p.Source).posted -= p.Amount
				get(p.Destination).posted += p.Amount
			case tx.Status == "pending":
				get(p.Source).pd += p.Amount
				get(p.Destination).pc += p.Amount
			}
		}
		for id := range touched {
			get(id).touched++
		}
	}
	for id, a := range st.Accounts {
		w := get(id)
		if a.Balance.Posted != w.posted {
			t.Errorf("account %s: posted %d, but its postings add up to %d", id, a.Balance.Posted, w.posted)
		}
		if !twoPhase {
			if a.Balance.PendingDebits != 0 || a.Balance.PendingCredits != 0 {
				t.Errorf("account %s: pending %d/%d without any hold", id, a.Balance.PendingDebits, a.Balance.PendingCredits)
			}
			if a.Version != w.touched {
				t.Errorf("account %s: version %d, but %d transactions touched it", id, a.Version, w.touched)
			}
		} else if a.Balance.PendingDebits != w.pd || a.Balance.PendingCredits != w.pc {
			t.Errorf("account %s: pending %d/%d, but the open holds add up to %d/%d", id, a.Balance.PendingDebits, a.Balance.PendingCredits, w.pd, w.pc)
		}
	}
	return st
}
