package loadtest

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// checkResult is one verified property of the ledger after the run.
type checkResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// checkInput is what the run knows and the ledger must agree with.
type checkInput struct {
	baseline           int64 // last_sequence before the load
	created            int64 // transactions the load and the settlement of follow-ups created
	unresolved         int64 // transactions that may or may not exist
	overdrafts         int64 // deliberate overdrafts sent
	overdraftsAccepted int64 // … that were accepted
}

// violationsShown bounds the account ids a failed min_balance check names.
const violationsShown = 5

// check verifies, through the API and with the run's key, the invariants
// a load can break (docs/api.md §Invariants): double entry (the posted balances of each
// asset sum to 0), min_balance under concurrency, durable acknowledgements
// and a gap-free log (the ledger holds exactly the transactions it
// acknowledged: sequences are gap-free from 1, so last_sequence is their
// number), and that deliberate overdrafts were refused. An error means the
// check itself could not run.
func check(ctx context.Context, c *client, ledger string, in checkInput) ([]checkResult, error) {
	sums := map[string]*big.Int{}
	var accounts int64
	var violations []string
	var nviolations int64
	path := ledgerPath(ledger) + "/accounts?limit=1000"
	cursor := ""
	for {
		var page struct {
			Data []struct {
				ID         string `json:"id"`
				Asset      string `json:"asset"`
				MinBalance *int64 `json:"min_balance"`
				Balance    struct {
					Posted    int64 `json:"posted"`
					Available int64 `json:"available"`
				} `json:"balance"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := c.do(ctx, http.MethodGet, p, nil, "", decodeJSON(&page))
		if !r.ok() {
			return nil, fmt.Errorf("list accounts: %s: %v", r.key(), r.err)
		}
		for _, a := range page.Data {
			accounts++
			s := sums[a.Asset]
			if s == nil {
				s = new(big.Int)
				sums[a.Asset] = s
			}
			s.Add(s, big.NewInt(a.Balance.Posted))
			if a.MinBalance != nil && a.Balance.Available < *a.MinBalance {
				nviolations++
				if len(violations) < violationsShown {
					violations = append(violations, fmt.Sprintf("%s available %d < min_balance %d", a.ID, a.Balance.Available, *a.MinBalance))
				}
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		if *page.NextCursor == cursor {
			return nil, fmt.Errorf("list accounts: next_cursor %q repeats", cursor)
		}
		cursor = *page.NextCursor
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	last, err := lastSequence(ctx, c, ledger)
	if err != nil {
		return nil, err
	}

	var results []checkResult
	var off []string
	for _, asset := range slices.Sorted(maps.Keys(sums)) {
		if sums[asset].Sign() != 0 {
			off = append(off, fmt.Sprintf("%s sums to %s", asset, sums[asset]))
		}
	}
	if len(off) == 0 {
		results = append(results, checkResult{"double_entry", true, fmt.Sprintf("posted balances of %d accounts sum to 0 in each of %d assets", accounts, len(sums))})
	} else {
		results = append(results, checkResult{"double_entry", false, strings.Join(off, "; ")})
	}

	if nviolations == 0 {
		results = append(results, checkResult{"min_balance", true, fmt.Sprintf("no account below its min_balance (%d accounts)", accounts)})
	} else {
		results = append(results, checkResult{"min_balance", false, fmt.Sprintf("%d accounts below min_balance: %s", nviolations, strings.Join(violations, "; "))})
	}

	results = append(results, countResult(last, in))

	switch {
	case in.overdraftsAccepted > 0:
		results = append(results, checkResult{"overdrafts_rejected", false, fmt.Sprintf("%d of %d deliberate overdrafts were accepted", in.overdraftsAccepted, in.overdrafts)})
	default:
		results = append(results, checkResult{"overdrafts_rejected", true, fmt.Sprintf("all %d deliberate overdrafts rejected", in.overdrafts)})
	}
	return results, nil
}

// countResult compares last_sequence with what the run accounted for. When
// follow-ups stayed unresolved the count can only be bounded.
func countResult(last int64, in checkInput) checkResult {
	want := in.baseline + in.created
	explain := fmt.Sprintf("last_sequence %d; %d before the load + %d created", last, in.baseline, in.created)
	if in.unresolved == 0 {
		if last == want {
			return checkResult{"transaction_count", true, explain}
		}
		return checkResult{"transaction_count", false, fmt.Sprintf("%s = %d expected (%+d)", explain, want, last-want)}
	}
	explain += fmt.Sprintf(" + up to %d in doubt", in.unresolved)
	if last >= want && last <= want+in.unresolved {
		return checkResult{"transaction_count", true, explain + " (count not exact)"}
	}
	return checkResult{"transaction_count", false, fmt.Sprintf("%s: want %d..%d", explain, want, want+in.unresolved)}
}

// lastSequence reads the ledger's highest sequence, which is also its number
// of transactions.
func lastSequence(ctx context.Context, c *client, ledger string) (int64, error) {
	var l struct {
		LastSequence *int64 `json:"last_sequence"`
	}
	r := c.do(ctx, http.MethodGet, ledgerPath(ledger), nil, "", decodeJSON(&l))
	switch {
	case r.status == http.StatusNotFound:
		return 0, fmt.Errorf("ledger %q not found", ledger)
	case !r.ok():
		return 0, fmt.Errorf("get ledger %q: %s", ledger, r.key())
	case l.LastSequence == nil:
		return 0, fmt.Errorf("get ledger %q: answer has no last_sequence", ledger)
	}
	return *l.LastSequence, nil
}
