package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Setup tuning: the API takes at most 1,000 accounts per batch and, by
// default, 1,000 transactions; a few requests in parallel keep a 10k-account
// setup to a couple of seconds without competing with itself.
const (
	setupChunk       = 1000
	setupParallel    = 4
	setupAttempts    = 5
	setupBackoff     = 200 * time.Millisecond
	worldAccountID   = "world"
	setupErrorsShown = 3
)

// setup creates the ledger, the unbounded funding account "world" and the
// accounts acct:000000…, and funds each with cfg.Initial from world. Every
// request carries an Idempotency-Key and is repeated with it while its
// outcome is in doubt, so an unsteady server cannot make setup create
// anything twice.
func setup(ctx context.Context, c *client, cfg config, runID string, stderr io.Writer) error {
	start := time.Now()
	lp := ledgerPath(cfg.Ledger)
	body, _ := json.Marshal(map[string]string{"name": cfg.Ledger})
	r, retried, err := sendRetrying(ctx, c, "/v1/ledgers", body, "lt-"+runID+"-ledger", nil)
	switch {
	case err != nil:
		return fmt.Errorf("create ledger: %w", err)
	case r.status == http.StatusCreated:
	case r.status == http.StatusConflict && r.code == "duplicate_ledger" && retried:
		// An earlier attempt of ours created it.
	case r.status == http.StatusConflict && r.code == "duplicate_ledger":
		return fmt.Errorf("ledger %q already exists: pass --reuse to load it, or another --ledger", cfg.Ledger)
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return fmt.Errorf("create ledger: %s: setup needs the bootstrap admin key (LEDGERD_ADMIN_KEY), or use --reuse", r.key())
	default:
		return fmt.Errorf("create ledger: unexpected answer %s", r.key())
	}

	type account struct {
		ID         string `json:"id"`
		Asset      string `json:"asset"`
		MinBalance *int64 `json:"min_balance"` // nil is sent as null: unbounded
	}
	var zero int64
	accounts := make([]account, 0, cfg.Accounts+1)
	accounts = append(accounts, account{ID: worldAccountID, Asset: cfg.Asset})
	for i := range cfg.Accounts {
		accounts = append(accounts, account{ID: accountID(i), Asset: cfg.Asset, MinBalance: &zero})
	}
	err = inChunks(ctx, len(accounts), func(ctx context.Context, chunk, lo, hi int) error {
		body, _ := json.Marshal(map[string]any{"accounts": accounts[lo:hi]})
		key := fmt.Sprintf("lt-%s-accounts-%d", runID, chunk)
		return sendBatch(ctx, c, lp+"/accounts/batch", body, key, hi-lo, func(it itemResult) bool {
			// duplicate_account: an earlier attempt of this very request created it.
			return is2xx(it.Status) || it.Status == http.StatusConflict && codeOf(it) == "duplicate_account"
		})
	})
	if err != nil {
		return fmt.Errorf("create accounts: %w", err)
	}

	if cfg.Initial > 0 {
		err = inChunks(ctx, cfg.Accounts, func(ctx context.Context, chunk, lo, hi int) error {
			var b strings.Builder
			b.WriteString(`{"atomic":false,"transactions":[`)
			for i := lo; i < hi; i++ {
				if i > lo {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"postings":[{"source":%q,"destination":%q,"amount":%d,"asset":%q}],"idempotency_key":"lt-%s-fund-%d"}`,
					worldAccountID, accountID(i), cfg.Initial, cfg.Asset, runID, i)
			}
			b.WriteString("]}")
			return sendBatch(ctx, c, lp+"/transactions/batch", []byte(b.String()), "", hi-lo, func(it itemResult) bool {
				return is2xx(it.Status)
			})
		})
		if err != nil {
			return fmt.Errorf("fund accounts: %w", err)
		}
	}
	fmt.Fprintf(stderr, "setup: ledger %s, %d accounts + %s, funded with %d %s each, in %s\n",
		cfg.Ledger, cfg.Accounts, worldAccountID, cfg.Initial, cfg.Asset, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkReuse makes sure a ledger to --reuse has the accounts the workload
// will address, so that a typo fails at once rather than as a run full of
// account_not_found.
func checkReuse(ctx context.Context, c *client, cfg config) error {
	last := accountID(cfg.Accounts - 1)
	var acc struct {
		Asset string `json:"asset"`
	}
	r := c.do(ctx, http.MethodGet, ledgerPath(cfg.Ledger)+"/accounts/"+url.PathEscape(last), nil, "", decodeJSON(&acc))
	switch {
	case r.status == http.StatusNotFound:
		return fmt.Errorf("--reuse: ledger %q or its account %s not found (was it set up with --accounts %d or more?)", cfg.Ledger, last, cfg.Accounts)
	case !r.ok():
		return fmt.Errorf("--reuse: reading account %s: %s", last, r.key())
	case acc.Asset != cfg.Asset:
		return fmt.Errorf("--reuse: account %s holds %s, not --asset %s", last, acc.Asset, cfg.Asset)
	}
	return nil
}

// inChunks calls fn for [lo, hi) slices of n items, setupChunk at a time,
// setupParallel at once; the first error stops the rest.
func inChunks(ctx context.Context, n int, fn func(ctx context.Context, chunk, lo, hi int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, setupParallel)
	var wg sync.WaitGroup
	for chunk, lo := 0, 0; lo < n && ctx.Err() == nil; chunk, lo = chunk+1, lo+setupChunk {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, chunk, lo, min(lo+setupChunk, n)); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// sendBatch posts a setup batch and requires every item to be accepted.
func sendBatch(ctx context.Context, c *client, path string, body []byte, key string, items int, accepted func(itemResult) bool) error {
	var ans batchAnswer
	r, _, err := sendRetrying(ctx, c, path, body, key, decodeBatch(&ans))
	if err != nil {
		return err
	}
	if !r.ok() {
		return fmt.Errorf("POST %s: %s", path, r.key())
	}
	if len(ans.Results) != items {
		return fmt.Errorf("POST %s: %d results for %d items", path, len(ans.Results), items)
	}
	var failed []string
	for i, it := range ans.Results {
		if !accepted(it) {
			failed = append(failed, fmt.Sprintf("item %d: %s", i, it.key()))
		}
	}
	if len(failed) > 0 {
		more := ""
		if len(failed) > setupErrorsShown {
			more = fmt.Sprintf(" and %d more", len(failed)-setupErrorsShown)
			failed = failed[:setupErrorsShown]
		}
		return fmt.Errorf("POST %s: %s%s", path, strings.Join(failed, ", "), more)
	}
	return nil
}

// sendRetrying POSTs an idempotent setup request, repeating it with the same
// key and body while the answer is in doubt, rate limited or
// idempotency_in_progress. retried reports whether an earlier attempt may
// have been applied. err is set only when every attempt failed that way.
func sendRetrying(ctx context.Context, c *client, path string, body []byte, key string, decode func([]byte) error) (r result, retried bool, err error) {
	for attempt := range setupAttempts {
		if attempt > 0 {
			if !sleepUntil(ctx, time.Now().Add(setupBackoff<<(attempt-1))) {
				return r, retried, ctx.Err()
			}
		}
		r = c.do(ctx, http.MethodPost, path, body, key, decode)
		transient := r.inDoubt() || r.status == http.StatusTooManyRequests ||
			r.status == http.StatusConflict && r.code == "idempotency_in_progress"
		if !transient {
			return r, retried, nil
		}
		retried = retried || r.inDoubt()
	}
	return r, retried, fmt.Errorf("POST %s: gave up after %d attempts, last %s", path, setupAttempts, r.key())
}
