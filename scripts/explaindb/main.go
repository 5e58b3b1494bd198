// Command explaindb regenerates the plans in docs/queries.md: it starts a
// throwaway PostgreSQL (pgcluster: temporary directory, loopback only),
// migrates it with `ledgerd migrate`, bulk-loads a ledger with load.sql
// (1,000,000 transactions = 2,000,000 entries by default), ANALYZEs, and
// runs EXPLAIN (ANALYZE, BUFFERS) on every query the API runs, with
// representative parameters. The plans replace the generated section of the
// output file; the cluster is stopped at the end, also on Ctrl-C.
//
// Run it through scripts/explain.sh, which builds ledgerd first.
//
// Each query is prepared as a named statement, as pgx does for the API
// (QueryExecModeCacheStatement), and explained twice: with a custom plan
// (planned for the parameter values, what the first executions on a
// connection get) and with the generic plan (what PostgreSQL may switch a
// pooled connection to after five executions). The generic plan is printed
// only when its shape differs.
//
// Every statement explained is the server's own: postgres/*.go exports
// its SQL (constants, or the builders of the filtered lists), and
// queries.go adds only example arguments, so the plans cannot drift from
// what the server runs.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd/pgcluster"
	"github.com/ledgerd/ledgerd/postgres"
)

//go:embed load.sql
var loadSQL string

const (
	beginMarker = "<!-- BEGIN GENERATED: scripts/explain.sh -->"
	endMarker   = "<!-- END GENERATED: scripts/explain.sh -->"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "explaindb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ledgerd := flag.String("ledgerd", "", "path of a built ledgerd binary (for `ledgerd migrate`)")
	out := flag.String("out", "docs/queries.md", "markdown file whose generated section is replaced")
	nTx := flag.Int("transactions", 1_000_000, "transactions to load (one posting, two entries each)")
	nAcc := flag.Int("accounts", 10_000, "accounts to load")
	days := flag.Int("days", 90, "the transactions spread over this many days before now")
	flag.Parse()
	if *ledgerd == "" {
		return errors.New("-ledgerd is required")
	}
	if *nTx < 1000 || *nAcc < 100 {
		return errors.New("need at least 1000 transactions and 100 accounts")
	}

	logf("starting a temporary PostgreSQL")
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{
		// A throwaway cluster: durability settings do not change plans,
		// and the bulk load is faster without them.
		"fsync":                "off",
		"full_page_writes":     "off",
		"synchronous_commit":   "off",
		"max_wal_size":         "8GB",
		"shared_buffers":       "512MB",
		"autovacuum":           "off", // VACUUM ANALYZE runs explicitly after the load
		"jit":                  "off",
		"max_parallel_workers": "2",
	}})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping PostgreSQL")
		if err := cl.Stop(); err != nil {
			logf("stop: %v", err)
		}
	}()
	if err := cl.CreateDatabase(ctx, "ledgerd", ""); err != nil {
		return err
	}
	url := cl.URL("ledgerd")

	logf("ledgerd migrate")
	mig := exec.CommandContext(ctx, *ledgerd, "migrate")
	mig.Env = append(os.Environ(), "DATABASE_URL="+url)
	mig.Stdout, mig.Stderr = os.Stderr, os.Stderr
	if err := mig.Run(); err != nil {
		return fmt.Errorf("ledgerd migrate: %w", err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	start := time.Now()
	logf("loading %d accounts and %d transactions (%d entries)", *nAcc, *nTx, 2**nTx)
	sql := strings.NewReplacer("{{TX}}", strconv.Itoa(*nTx), "{{ACCOUNTS}}", strconv.Itoa(*nAcc), "{{DAYS}}", strconv.Itoa(*days)).Replace(loadSQL)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	logf("loaded in %s; VACUUM ANALYZE", time.Since(start).Round(time.Second))
	// Autovacuum never analyzes a partitioned parent: do it explicitly.
	for _, s := range []string{"VACUUM (ANALYZE)", "ANALYZE transactions, entries", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var n float32
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		relRows[name] = float64(n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	facts, err := describe(ctx, conn)
	if err != nil {
		return err
	}
	v, err := pickValues(ctx, conn, *nTx, *nAcc)
	if err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", beginMarker)
	fmt.Fprintf(&b, "Generated by `scripts/explain.sh` on %s with PostgreSQL %s (shared_buffers 512MB, warm cache).\n\n",
		time.Now().UTC().Format("2006-01-02"), facts.version)
	fmt.Fprintf(&b, "Data: %s\n\n", facts.summary)
	var sections strings.Builder
	fmt.Fprintf(&b, "| # | query | scans (custom plan) | generic plan | sequential scan of a large table | rows discarded by filters | execution |\n|---|---|---|---|---|---|---|\n")
	for i, q := range queries() {
		logf("explain %d: %s", i+1, q.name)
		args := q.args(v)
		custom, err := explain(ctx, conn, q, args, "force_custom_plan")
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		generic, err := explain(ctx, conn, q, args, "force_generic_plan")
		if err != nil {
			return fmt.Errorf("%s (generic): %w", q.name, err)
		}
		same := shape(custom) == shape(generic)
		gen := "same shape"
		if !same {
			gen = "differs: " + strings.Join(scans(generic), ", ")
		}
		seq := strings.Join(slices.Compact(slices.Sorted(slices.Values(append(seqScans(custom), seqScans(generic)...)))), ", ")
		if seq == "" {
			seq = "none"
		} else {
			seq = "**" + seq + "**"
		}
		discarded := strconv.Itoa(removed(custom))
		if g := removed(generic); g != removed(custom) {
			discarded += fmt.Sprintf(" (generic: %d)", g)
		}
		if removed(custom) >= discardWarn || removed(generic) >= discardWarn {
			discarded = "**" + discarded + "**"
		}
		fmt.Fprintf(&b, "| %d | [%s](#q%d) | %s | %s | %s | %s | %s |\n", i+1, q.name, i+1,
			strings.Join(scans(custom), ", "), gen, seq, discarded, execTime(custom))

		fmt.Fprintf(&sections, "<a id=\"q%d\"></a>\n### %d. %s\n\n", i+1, i+1, q.name)
		fmt.Fprintf(&sections, "*Runs in* `%s` — %s\n\n", q.where, q.route)
		fmt.Fprintf(&sections, "%s\n\n", q.note)
		fmt.Fprintf(&sections, "```sql\n%s\n```\n\n", strings.TrimSpace(q.sql))
		fmt.Fprintf(&sections, "Parameters: %s\n\n", describeArgs(args))
		if seq := seqScans(custom); len(seq) > 0 {
			fmt.Fprintf(&sections, "**Sequential scan of a large table:** %s.\n\n", strings.Join(seq, ", "))
		}
		if seq := seqScans(generic); len(seq) > 0 && !same {
			fmt.Fprintf(&sections, "**Sequential scan of a large table in the generic plan:** %s.\n\n", strings.Join(seq, ", "))
		}
		fmt.Fprintf(&sections, "```\n%s\n```\n\n", custom)
		if !same {
			fmt.Fprintf(&sections, "Generic plan (a pooled connection may switch to it after five executions):\n\n```\n%s\n```\n\n", generic)
		}
	}
	b.WriteString("\n")
	b.WriteString(sections.String())
	b.WriteString(endMarker + "\n")
	if err := replaceSection(*out, b.String()); err != nil {
		return err
	}
	logf("wrote %s", *out)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "explaindb: "+format+"\n", args...)
}

type dbFacts struct{ version, summary string }

func describe(ctx context.Context, conn *pgx.Conn) (dbFacts, error) {
	var f dbFacts
	var ver string
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&ver); err != nil {
		return f, err
	}
	f.version = strings.Fields(ver)[0]
	var acc, tx, en, commits, refs, keys, parts int64
	var txSize, enSize string
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM transactions),
		(SELECT count(*) FROM entries), (SELECT count(*) FROM ledger_commits), (SELECT count(*) FROM transaction_references),
		(SELECT count(*) FROM idempotency_keys),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass),
		pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'transactions'::regclass)),
		pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'entries'::regclass))`).
		Scan(&acc, &tx, &en, &commits, &refs, &keys, &parts, &txSize, &enSize)
	if err != nil {
		return f, err
	}
	f.summary = fmt.Sprintf("%d accounts, %d transactions (%s with indexes), %d entries (%s), %d commits, %d references, "+
		"%d idempotency keys; %d monthly partitions per partitioned table.", acc, tx, txSize, en, enSize, commits, refs, keys, parts)
	return f, nil
}

// values are the representative parameters the queries run with.
type values struct {
	ledgerID     int64
	midTx        pgtype.UUID
	midSeq       int64
	lastSeq      int64
	from, to     time.Time
	fromSeq      int64 // first sequence at or after from
	toSeq        int64 // first sequence at or after to
	apiKeyID     string
	liveKey      string
	holds        []pgtype.UUID // pending holds (targets of a capture)
	batch        batchArrays
	firstBatchID pgtype.UUID
}

// batchArrays are the columns of a 1,000-item write batch, as WriteBatch
// builds them.
type batchArrays struct {
	accounts                               []string
	keys, refs                             []string
	txID                                   []pgtype.UUID
	txSeq                                  []int64
	txStatus, txPostings, txMetadata       []string
	txRef                                  []*string
	txExpires                              []*time.Time
	txNoID                                 []pgtype.UUID // pending_id, reverses: none
	enTx                                   []pgtype.UUID
	enAccount                              []string
	enSeq, enAmount, enAfter, enVersion    []int64
	enIndex                                []int16
	enPending                              []bool
	uaID                                   []string
	uaPosted, uaPD, uaPC, uaVersion        []int64
	ikKey                                  []string
	ikHash                                 [][]byte
	ikStatus                               []int16
	ikTx                                   []pgtype.UUID
	ikProblem                              []*string
	refTx                                  []pgtype.UUID
	now                                    time.Time
	naIDs, naAssets, naMetadata            []string
	naMins                                 []*int64
	deadRequest, deadReason, idempotencyID string
}

func pickValues(ctx context.Context, conn *pgx.Conn, nTx, nAcc int) (*values, error) {
	v := &values{ledgerID: 1, midSeq: int64(nTx / 2 / 2 * 2)}
	if err := conn.QueryRow(ctx, `SELECT last_sequence FROM ledgers WHERE id = 1`).Scan(&v.lastSeq); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT id FROM transactions WHERE ledger_id = 1 AND sequence = $1`, v.midSeq).Scan(&v.midTx); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT min(id) FROM api_keys WHERE ledger_id = 1`).Scan(&v.apiKeyID); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT key FROM idempotency_keys WHERE ledger_id = 1 AND expires_at > now() ORDER BY key LIMIT 1`).Scan(&v.liveKey); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	v.from = now.AddDate(0, 0, -30).Truncate(time.Hour)
	v.to = v.from.Add(24 * time.Hour)
	for _, b := range []struct {
		t   time.Time
		seq *int64
	}{{v.from, &v.fromSeq}, {v.to, &v.toSeq}} {
		err := conn.QueryRow(ctx, postgres.FirstSequenceFromSQL, int64(1), b.t).Scan(b.seq)
		if err != nil {
			return nil, fmt.Errorf("sequence at %s: %w", b.t, err)
		}
	}

	// A batch of 1,000 single-posting transfers between random accounts,
	// every one with a new idempotency key and every second with a
	// reference; ten of the keys exist already (retries).
	r := rand.New(rand.NewPCG(1, 2))
	ba := &v.batch
	ba.now = now
	acct := func(i int) string { return fmt.Sprintf("acct:%06d", i) }
	touched := map[string]bool{}
	var live []string
	rows, err := conn.Query(ctx, `SELECT key FROM idempotency_keys WHERE ledger_id = 1 AND expires_at > now() ORDER BY key LIMIT 10`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		live = append(live, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	seq := v.lastSeq
	for i := 0; i < 1000; i++ {
		src := r.IntN(nAcc)
		dst := (src + 1 + r.IntN(nAcc-1)) % nAcc
		s, d := acct(src), acct(dst)
		touched[s], touched[d] = true, true
		key := fmt.Sprintf("new-key-%d", i)
		if i < len(live) {
			key = live[i]
		}
		ba.keys = append(ba.keys, key)
		seq++
		id := uuidAt(now, r)
		if i == 0 {
			v.firstBatchID = id
		}
		amount := int64(1 + r.IntN(1000))
		ba.txID, ba.txSeq, ba.txStatus = append(ba.txID, id), append(ba.txSeq, seq), append(ba.txStatus, "posted")
		ba.txPostings = append(ba.txPostings, fmt.Sprintf(`[{"source":"%s","destination":"%s","amount":%d,"asset":"USD"}]`, s, d, amount))
		ba.txMetadata, ba.txExpires = append(ba.txMetadata, "{}"), append(ba.txExpires, nil)
		if i%2 == 0 {
			ref := fmt.Sprintf("new-ref-%d", i)
			ba.refs, ba.txRef, ba.refTx = append(ba.refs, ref), append(ba.txRef, &ref), append(ba.refTx, id)
		} else {
			ba.txRef = append(ba.txRef, nil)
		}
		for _, leg := range []struct {
			a   string
			amt int64
		}{{s, -amount}, {d, amount}} {
			ba.enTx, ba.enAccount, ba.enSeq = append(ba.enTx, id), append(ba.enAccount, leg.a), append(ba.enSeq, seq)
			ba.enIndex, ba.enAmount, ba.enPending = append(ba.enIndex, 0), append(ba.enAmount, leg.amt), append(ba.enPending, false)
			ba.enAfter, ba.enVersion = append(ba.enAfter, 0), append(ba.enVersion, 1)
		}
		ba.ikKey, ba.ikHash, ba.ikStatus = append(ba.ikKey, fmt.Sprintf("new-key-%d", i)), append(ba.ikHash, []byte{byte(i), byte(i >> 8)}), append(ba.ikStatus, 201)
		ba.ikTx, ba.ikProblem = append(ba.ikTx, id), append(ba.ikProblem, nil)
	}
	for a := range touched {
		ba.accounts = append(ba.accounts, a)
		ba.uaID, ba.uaPosted, ba.uaPD, ba.uaPC, ba.uaVersion = append(ba.uaID, a), append(ba.uaPosted, 0), append(ba.uaPD, 0), append(ba.uaPC, 0), append(ba.uaVersion, 1<<40)
	}
	slices.Sort(ba.accounts)
	// An account batch of 1,000, a tenth of them existing already.
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("new:%04d", i)
		if i%10 == 0 {
			id = acct(i)
		}
		ba.naIDs, ba.naAssets, ba.naMetadata = append(ba.naIDs, id), append(ba.naAssets, "USD"), append(ba.naMetadata, `{"owner":"batch"}`)
		zero := int64(0)
		ba.naMins = append(ba.naMins, &zero)
	}
	ba.txNoID = make([]pgtype.UUID, len(ba.txID))
	hr, err := conn.Query(ctx, `SELECT id FROM transactions WHERE ledger_id = 1 AND status = 'pending' ORDER BY sequence DESC LIMIT 10`)
	if err != nil {
		return nil, err
	}
	for hr.Next() {
		var id pgtype.UUID
		if err := hr.Scan(&id); err != nil {
			return nil, err
		}
		v.holds = append(v.holds, id)
	}
	if err := hr.Err(); err != nil {
		return nil, err
	}
	if len(v.holds) == 0 {
		return nil, errors.New("the data set has no pending holds")
	}
	ba.deadRequest = ba.txPostings[0]
	ba.deadReason = "write batch: ERROR: example (SQLSTATE XX000)"
	ba.idempotencyID = "acct-create-1"
	return v, nil
}

// uuidAt is the ledger's transaction id for time t.
func uuidAt(t time.Time, r *rand.Rand) pgtype.UUID { return postgres.TransactionIDAt(t, r.Uint64) }

var stmtSeq int

// explain prepares q as a named statement and runs EXPLAIN (ANALYZE,
// BUFFERS) EXECUTE with the given plan_cache_mode, twice (the first run
// warms the cache). Writes run in a transaction that is rolled back.
func explain(ctx context.Context, conn *pgx.Conn, q query, args []any, mode string) (string, error) {
	stmtSeq++
	name := fmt.Sprintf("q%d", stmtSeq)
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		return "", err
	}
	if _, err := conn.Prepare(ctx, name, q.sql); err != nil {
		return "", err
	}
	defer conn.Deallocate(context.Background(), name)
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	stmt := "EXPLAIN (ANALYZE, BUFFERS) EXECUTE " + name
	if len(args) > 0 {
		stmt += "(" + strings.Join(ph, ", ") + ")"
	}
	var plan string
	for range 2 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return "", err
		}
		setup := q.setup
		if q.batchTx {
			setup = append(slices.Clone(batchSettings), setup...)
		}
		for _, set := range setup {
			if _, err := tx.Exec(ctx, set); err != nil {
				_ = tx.Rollback(ctx)
				return "", err
			}
		}
		// The simple protocol makes pgx render the arguments as literals
		// in EXECUTE, so the prepared statement sees typed values exactly
		// like the API's bound parameters.
		rows, err := tx.Query(ctx, stmt, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			_ = tx.Rollback(ctx)
			return "", err
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				_ = tx.Rollback(ctx)
				return "", err
			}
			lines = append(lines, l)
		}
		if err := rows.Err(); err != nil {
			_ = tx.Rollback(ctx)
			return "", err
		}
		if err := tx.Rollback(ctx); err != nil {
			return "", err
		}
		plan = strings.Join(lines, "\n")
	}
	return plan, nil
}

var (
	nodeRE = regexp.MustCompile(`^\s*(?:->\s*)?([A-Z][A-Za-z ]+?)(?:\s+using\s+(\S+))?(?:\s+on\s+(\S+))?(?:\s+\w+)?\s+\(cost`)
	timeRE = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)
)

// scan is one scan node of a plan.
type scan struct {
	kind  string // "Index Scan", "Seq Scan", ...
	index string // index name, if any
	rel   string // relation, if any
}

func (s scan) String() string {
	name := s.index
	if name == "" {
		name = s.rel
	}
	return partitionRE.ReplaceAllString(strings.TrimSpace(s.kind+" "+name), "_YYYY_MM")
}

// planScans lists the plan's scan nodes.
func planScans(plan string) []scan {
	var out []scan
	for _, l := range strings.Split(plan, "\n") {
		m := nodeRE.FindStringSubmatch(l)
		if m == nil || !strings.Contains(m[1], "Scan") {
			continue
		}
		sc := scan{kind: m[1], index: m[2], rel: m[3]}
		if strings.HasPrefix(m[1], "Bitmap Index Scan") { // "Bitmap Index Scan on <index>"
			sc.index, sc.rel = m[3], ""
		}
		out = append(out, sc)
	}
	return out
}

// scans lists the plan's scan nodes once each, partitions folded.
func scans(plan string) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range planScans(plan) {
		s := sc.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, "`"+s+"`")
		}
	}
	return out
}

// relRows is pg_class.reltuples by relation name, after ANALYZE.
var relRows = map[string]float64{}

// tinyRows is the size below which a sequential scan is the right plan
// (the ledgers, the API keys, goose's table, empty future partitions).
const tinyRows = 1000

// seqScans lists the sequential scans of tables that are not tiny.
func seqScans(plan string) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range planScans(plan) {
		if !strings.Contains(sc.kind, "Seq Scan") || relRows[sc.rel] < tinyRows {
			continue
		}
		s := fmt.Sprintf("`%s on %s` (%.0f rows)", sc.kind, sc.rel, relRows[sc.rel])
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var partitionRE = regexp.MustCompile(`_\d{4}_\d{2}`)

// shape is the plan without numbers: node kinds, indexes and tables.
func shape(plan string) string {
	var b strings.Builder
	for _, l := range strings.Split(plan, "\n") {
		if m := nodeRE.FindStringSubmatch(l); m != nil {
			b.WriteString(partitionRE.ReplaceAllString(m[0][:strings.Index(m[0], "(cost")], "_P"))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

var removedRE = regexp.MustCompile(`Rows Removed by Filter: (\d+)`)

// discardWarn is the number of rows read and thrown away by filters above
// which a plan is flagged in the summary.
const discardWarn = 1000

// removed sums the plan's "Rows Removed by Filter" (per loop, as EXPLAIN
// reports them): rows a scan read only to throw away.
func removed(plan string) int {
	n := 0
	for _, m := range removedRE.FindAllStringSubmatch(plan, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

func execTime(plan string) string {
	if m := timeRE.FindStringSubmatch(plan); m != nil {
		return m[1] + " ms"
	}
	return ""
}

func describeArgs(args []any) string {
	if len(args) == 0 {
		return "none"
	}
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprintf("$%d = %s", i+1, describeArg(a))
	}
	return strings.Join(parts, ", ")
}

func describeArg(a any) string {
	switch x := a.(type) {
	case string:
		return "`'" + x + "'`"
	case time.Time:
		return "`" + x.Format(time.RFC3339) + "`"
	case time.Duration:
		return "`" + x.String() + "`"
	case pgtype.UUID:
		return "`" + uuidString(x) + "`"
	case []string:
		return fmt.Sprintf("%d strings", len(x))
	case []pgtype.UUID:
		return fmt.Sprintf("%d uuids", len(x))
	case []int64, []int16, []bool, [][]byte, []*string, []*time.Time, []*int64:
		return fmt.Sprintf("array of %d", sliceLen(x))
	case []byte:
		return "bytes"
	case nil:
		return "NULL"
	}
	return fmt.Sprintf("`%v`", a)
}

func sliceLen(a any) int {
	switch x := a.(type) {
	case []int64:
		return len(x)
	case []int16:
		return len(x)
	case []bool:
		return len(x)
	case [][]byte:
		return len(x)
	case []*string:
		return len(x)
	case []*time.Time:
		return len(x)
	case []*int64:
		return len(x)
	}
	return 0
}

func uuidString(u pgtype.UUID) string {
	b := u.Bytes
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// replaceSection writes section between the markers of path, or appends it
// when the file has none.
func replaceSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	default:
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
