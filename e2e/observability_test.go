package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// obsLoad posts transfers (ok of them fit the funds, overdrafts do not)
// and one batch, from several clients at once so that batches form.
func obsLoad(t *testing.T, c *client, fx *fixture, round string, ok, overdrafts int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, ok+overdrafts)
	send := func(i int, amount int64, want int) {
		defer wg.Done()
		from, to := fx.accounts[i%len(fx.accounts)], fx.accounts[(i+1)%len(fx.accounts)]
		body := fmt.Sprintf(`{"postings":[{"source":%q,"destination":%q,"amount":%d,"asset":"USD"}]}`, from, to, amount)
		r, err := c.do(t.Context(), http.MethodPost, txPath(fx.ledger), []byte(body), fmt.Sprintf("obs-%s-%d", round, i))
		if err != nil {
			errs <- err
			return
		}
		if r.status != want {
			errs <- fmt.Errorf("transfer %d: %s, want %d", i, r, want)
		}
	}
	sem := make(chan struct{}, 8)
	for i := range ok + overdrafts {
		amount, want := int64(1), http.StatusCreated
		if i >= ok {
			amount, want = 1<<40, http.StatusUnprocessableEntity
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer func() { <-sem }(); send(i, amount, want) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// scrape reads a /metrics page.
func scrape(t *testing.T, addr string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return body, fams
}

// TestMetricsPrometheus runs a real Prometheus against a `ledgerd serve`
// under a short load: /metrics passes promtool's lint, no label holds a
// value a client chose (path, ledger, account, key), Prometheus scrapes
// the key series with the values the load implies, every rule of
// alerts.yml evaluates, and every dashboard query names only series
// ledgerd exports and is valid PromQL.
func TestMetricsPrometheus(t *testing.T) {
	promtool, prom := prometheusTools(t)
	bin := buildLedgerd(t)
	debug := freeAddr(t)
	db := ledgertest.NewDatabase(t)
	// The primary as its own "replica": the lag gauge exists, at 0.
	// The node runs the asynchronous tail too, so that the worker's metrics
	// (ledgerd_tail_*, ledgerd_webhook_*) are scraped with the rest.
	n := startNode(t, bin, "obs", db, "LEDGERD_DEBUG_ADDR="+debug, "LEDGERD_METRIC_ASSETS=USD", "DATABASE_REPLICA_URL="+db,
		tailWorkerEnv, "LEDGERD_WORKERS=true", "LEDGERD_WORKER_POLL=50ms", "LEDGERD_WEBHOOK_RETRY_SCHEDULE=100ms,200ms,500ms",
		"LEDGERD_WEBHOOK_TIMEOUT=2s")
	fx := newFixture(t, n.URL(), "obsledger", 8, 1000)
	c := &client{base: n.URL(), key: fx.writeKey, hc: newHTTPClient(t)}
	// Prometheus first, so that it sees the counters move (a rate needs
	// two scrapes apart).
	p := startPrometheus(t, prom, []string{debug}, "../deploy/prometheus/alerts.yml")
	p.waitFor(t, `up{job="ledgerd"}`, 30*time.Second, func(r []promSample) bool { return len(r) == 1 && r[0].value() == 1 })
	const ok, overdrafts = 120, 7
	obsLoad(t, c, fx, "a", ok/2, 0)
	time.Sleep(2 * time.Second)
	obsLoad(t, c, fx, "b", ok/2, overdrafts)

	body, fams := scrape(t, debug)
	runPromtool(t, promtool, body, "check", "metrics")
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, fx.ledger) || strings.Contains(v, "users:") || strings.Contains(v, fx.writeKey) ||
					strings.Contains(v, "obs-") {
					t.Errorf("%s{%s=%q}: a client's value as a label", name, l.GetName(), v)
				}
				if l.GetName() == "route" && v != "unmatched" && !strings.HasPrefix(v, "GET /") &&
					!strings.HasPrefix(v, "POST /") && !strings.HasPrefix(v, "PATCH /") && !strings.HasPrefix(v, "DELETE /") &&
					!strings.HasPrefix(v, "PUT /") {
					t.Errorf("%s: route %q is not a pattern", name, v)
				}
			}
		}
	}
	for _, want := range []string{"ledgerd_http_request_duration_seconds", "ledgerd_transactions_posted_total",
		"ledgerd_transactions_rejected_total", "ledgerd_posted_volume_minor_units_total", "ledgerd_batch_size_transactions",
		"ledgerd_batch_flush_duration_seconds", "ledgerd_batch_queue_wait_seconds", "ledgerd_batch_item_retries_total",
		"ledgerd_batch_dead_letters_total", "ledgerd_batch_queued_transactions", "ledgerd_db_pool_utilisation_ratio",
		"ledgerd_db_pool_acquire_timeouts_total", "ledgerd_db_pool_acquire_duration_seconds", "ledgerd_db_partitions",
		"ledgerd_db_partition_rows_estimate", "ledgerd_db_holds_pending", "ledgerd_db_replica_lag_seconds"} {
		if fams[want] == nil {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	posted := float64(len(fx.accounts) + ok)
	p.waitFor(t, `sum(ledgerd_transactions_posted_total)`, 30*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == posted })
	p.waitFor(t, `sum(ledgerd_transactions_rejected_total{code="insufficient_funds"})`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == overdrafts })
	// Funding (1,000 each) and the transfers (1 each), all in USD.
	p.waitFor(t, `ledgerd_posted_volume_minor_units_total{asset="USD"}`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == float64(len(fx.accounts)*1000+ok) })
	p.waitFor(t, `ledgerd_db_pool_max_connections`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == 16 })
	p.waitFor(t, `ledgerd_db_partitions{table="transactions"}`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() >= 2 })
	p.waitFor(t, `sum(ledgerd_http_request_duration_seconds_count{route="POST /v1/ledgers/{ledger}/transactions"})`,
		10*time.Second, func(r []promSample) bool { return len(r) == 1 && r[0].value() == ok+overdrafts })
	p.waitFor(t, `ledgerd_batch_size_transactions_count`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() >= 1 && r[0].value() <= posted })
	// Recording rules evaluate on the scraped series: the p99 is a latency
	// (under the histogram's top bucket), the error ratio is 0.
	p.waitFor(t, `ledgerd:http_request_duration_seconds:p99_5m`, 30*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() > 0 && r[0].value() <= 5 })
	p.waitFor(t, `ledgerd:http_errors_ratio:rate5m`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == 0 })
	p.waitFor(t, `ledgerd_db_replica_lag_seconds`, 10*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() == 0 })
	checkRulesHealthy(t, p)

	// Webhook deliveries (a receiver failing every third attempt, so that
	// retries happen too), then the dashboards against a scrape that holds
	// the tail's series.
	tf := newTailFixture(t, n.URL(), "obstail", 3)
	stop := make(chan struct{})
	go func() { time.Sleep(time.Second); close(stop) }()
	all, _ := tf.load(stop, 2)
	// Three attempts only: a few deliveries run out of them (dead letters).
	missing, _, dead := tf.accounted(tf.all, db, tf.allID, all, 30*time.Second)
	if len(missing) > 0 || len(all) == 0 {
		t.Fatalf("webhooks: of %d events %d missing, %d dead letters", len(all), len(missing), dead)
	}
	p.waitFor(t, `sum(ledgerd_webhook_attempts_total{outcome=~"delivered|dead_letter"})`, 30*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() >= float64(len(all)) })
	p.waitFor(t, `ledgerd:webhook_failures_ratio:rate15m`, 30*time.Second,
		func(r []promSample) bool { return len(r) == 1 && r[0].value() > 0 && r[0].value() < 1 })
	time.Sleep(time.Second) // one more sampling round of the tail's gauges
	_, fams = scrape(t, debug)
	checkDashboards(t, p, fams)
}

// checkRulesHealthy: Prometheus evaluated every rule without error, and no
// alert fires on a healthy node under light load.
func checkRulesHealthy(t *testing.T, p *promServer) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					State     string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := decodeJSON(resp.Body, &r); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			n++
			if rule.Health != "ok" {
				t.Errorf("rule %s: %s %s", rule.Name, rule.Health, rule.LastError)
			}
			if rule.State == "firing" {
				t.Errorf("alert %s fires on a healthy node", rule.Name)
			}
		}
	}
	if n < 20 {
		t.Errorf("%d rules loaded", n)
	}
}

var metricName = regexp.MustCompile(`\bledgerd(_[a-z0-9_]+|:[a-z0-9_:]+)`)

// checkDashboards: the dashboards parse, panel ids are unique per
// dashboard, every query names only metrics in the scrape fams (of a node
// that runs the tail, so the worker's ledgerd_tail_* and ledgerd_webhook_*
// are there) or records of alerts.yml, and Prometheus accepts every query.
func checkDashboards(t *testing.T, p *promServer, fams map[string]*dto.MetricFamily) {
	t.Helper()
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dashboards, err := loadDashboards("../deploy/grafana/dashboards")
	if err != nil {
		t.Fatal(err)
	}
	if len(dashboards) < 5 {
		t.Fatalf("%d dashboards", len(dashboards))
	}
	exported := func(name string) bool {
		if strings.HasPrefix(name, "ledgerd:") {
			return strings.Contains(string(rules), "record: "+name+"\n")
		}
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil {
				return true
			}
		}
		return false
	}
	for _, d := range dashboards {
		ids := map[int]bool{}
		for _, panel := range d.panels() {
			if ids[panel.ID] {
				t.Errorf("%s: panel id %d twice", d.file, panel.ID)
			}
			ids[panel.ID] = true
			for _, tg := range panel.Targets {
				for _, name := range metricName.FindAllString(tg.Expr, -1) {
					if !exported(name) {
						t.Errorf("%s: panel %q: %s is not exported by ledgerd", d.file, panel.Title, name)
					}
				}
				if _, err := p.query(grafanaVars.Replace(tg.Expr)); err != nil {
					t.Errorf("%s: panel %q: %v", d.file, panel.Title, err)
				}
			}
		}
	}
}
