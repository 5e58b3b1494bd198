package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// probe measures each of the benchmark's requests -n times, one at a
// time (latency, not throughput: nothing queues behind another request),
// each on an account drawn uniformly, after -warmup unmeasured ones. With
// several APIs (-api A,B: one per loaded size) it sends each request to
// every one in turn, so that whatever else the machine is doing falls on
// all sizes alike. It prints one {"name": {"p50_ms", "p99_ms", ...}}
// object per API, in a JSON array. Any answer but the expected status
// fails the probe.
func probe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	api := fs.String("api", "", "API base URLs, comma-separated (one per size, each serving ledger bench)")
	key := fs.String("key", "", "API key with write access to ledger bench")
	n := fs.Int("n", 2000, "measured requests of each kind")
	warmup := fs.Int("warmup", 200, "unmeasured requests of each kind first")
	accounts := fs.Int("accounts", 100_000, "accounts of the loaded ledger")
	months := fs.Int("months", 12, "months of history of the loaded ledger")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UTC()
	start := now.AddDate(0, -*months, 0)
	acct := func() string { return accountID(int32(rng.IntN(*accounts))) }
	apis := strings.Split(*api, ",")
	type request struct {
		method, path string
		body         any
		status       int
	}
	kinds := []struct {
		name string
		next func() request
	}{
		{"get_account", func() request { return request{"GET", "/accounts/" + acct(), nil, 200} }},
		{"list_transactions_by_account", func() request {
			return request{"GET", "/transactions?account=" + url.QueryEscape(acct()), nil, 200}
		}},
		// The same first page at a size every account fills at 1 M too:
		// the default page holds about 20 rows at 1 M and 100 at 10 M,
		// so its latency also measures a 5 times larger answer.
		{"list_transactions_by_account_limit10", func() request {
			return request{"GET", "/transactions?limit=10&account=" + url.QueryEscape(acct()), nil, 200}
		}},
		{"statement_one_month", func() request {
			// A whole month that the history covers.
			m := monthOf(start).AddDate(0, 1+rng.IntN(*months-1), 0)
			q := url.Values{"from": {m.Format(time.RFC3339)}, "to": {m.AddDate(0, 1, 0).Format(time.RFC3339)}}
			return request{"GET", "/accounts/" + acct() + "/entries?" + q.Encode(), nil, 200}
		}},
		{"balance_at", func() request {
			at := start.Add(time.Duration(rng.Int64N(int64(now.Sub(start)))))
			return request{"GET", "/accounts/" + acct() + "/balance?at=" + url.QueryEscape(at.Format(time.RFC3339Nano)), nil, 200}
		}},
		{"post_transfer", func() request {
			src := rng.IntN(*accounts)
			dst := (src + 1 + rng.IntN(*accounts-1)) % *accounts
			return request{"POST", "/transactions", map[string]any{"postings": []map[string]any{{
				"source": accountID(int32(src)), "destination": accountID(int32(dst)), "amount": 1, "asset": "USD"}}}, 201}
		}},
	}
	type stats struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
		N   int     `json:"n"`
		// Rows is the mean number of items a list answer held.
		Rows float64 `json:"rows_per_answer"`
	}
	out := make([]map[string]stats, len(apis))
	for a := range apis {
		out[a] = map[string]stats{}
	}
	for _, k := range kinds {
		lat := make([][]float64, len(apis))
		rows := make([]int, len(apis))
		for i := range *warmup + *n {
			r := k.next()
			for a, base := range apis {
				var body io.Reader
				if r.body != nil {
					b, _ := json.Marshal(r.body)
					body = bytes.NewReader(b)
				}
				req, err := http.NewRequestWithContext(ctx, r.method, base+"/v1/ledgers/bench"+r.path, body)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+*key)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return fmt.Errorf("%s %s: %w", r.method, r.path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != r.status {
					return fmt.Errorf("%s %s: %s: %s", r.method, r.path, resp.Status, b)
				}
				if i >= *warmup {
					lat[a] = append(lat[a], float64(d.Microseconds())/1000)
					var list struct{ Data []json.RawMessage }
					if json.Unmarshal(b, &list) == nil {
						rows[a] += len(list.Data)
					}
				}
			}
		}
		for a := range apis {
			l := lat[a]
			slices.Sort(l)
			out[a][k.name] = stats{P50: l[len(l)/2], P99: l[len(l)*99/100], Max: l[len(l)-1], N: len(l),
				Rows: float64(rows[a]) / float64(len(l))}
			fmt.Fprintf(os.Stderr, "%s %s: p50 %.2f ms, p99 %.2f ms\n", apis[a], k.name, out[a][k.name].P50, out[a][k.name].P99)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
