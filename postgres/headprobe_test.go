package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
)

// addPastMonths creates n monthly partitions of entries and transactions
// before the ones EnsurePartitions keeps (last month on), as a server
// that kept n more months online would have them.
func (e *fastEnv) addPastMonths(n int) {
	e.t.Helper()
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	for i := 1; i <= n; i++ {
		from, to := first.AddDate(0, -i, 0), first.AddDate(0, -i+1, 0)
		for _, table := range []string{"entries", "transactions"} {
			sql := fmt.Sprintf(`CREATE TABLE %s_%04d_%02d PARTITION OF %s FOR VALUES FROM (txid_floor('%s')) TO (txid_floor('%s'))`,
				table, from.Year(), from.Month(), table, from.Format(time.RFC3339), to.Format(time.RFC3339))
			if _, err := e.db.Pool.Exec(e.ctx, sql); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

var probeRE = regexp.MustCompile(`Index (?:Only )?Scan(?: Backward)? using \S+ on (entries_\d{4}_\d{2}) .*loops=(\d+)\)`)

// probedMonths runs sql under EXPLAIN and returns the partitions of
// entries whose scan ran, once per time it ran. The bounds come from the account and ledger
// rows, so the executor prunes per row (a plain EXPLAIN lists every
// partition it may prune at run time): ANALYZE shows which ran, with
// TIMING and COSTS off so that the plan text is stable.
func (e *fastEnv) probedMonths(sql string, args ...any) []string {
	probed, _ := e.probe(sql, args...)
	return probed
}

// probe is probedMonths with the plan's text.
func (e *fastEnv) probe(sql string, args ...any) ([]string, string) {
	e.t.Helper()
	rows, err := e.db.Pool.Query(e.ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) `+sql, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var probed []string
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			e.t.Fatal(err)
		}
		plan.WriteString(line + "\n")
		if m := probeRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			for range n {
				probed = append(probed, m[1])
			}
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	// The plan holds every partition; the pruning is the executor's.
	if n := strings.Count(plan.String(), " on entries_"); n < 29 && len(probed) > 0 {
		e.t.Fatalf("the plan names %d partitions of entries:\n%s", n, plan.String())
	}
	return probed, plan.String()
}

// filteredScan reports whether a scan of a partition of entries dropped
// rows by its filter: the probe then walked entries instead of taking the
// newest.
func filteredScan(plan string) bool {
	in := false
	for _, l := range strings.Split(plan, "\n") {
		switch {
		case probeRE.MatchString(l):
			in = true
		case strings.Contains(l, "->"):
			in = false
		case in && strings.Contains(l, "Rows Removed by Filter"):
			return true
		}
	}
	return false
}

func thisMonth() string {
	now := time.Now().UTC()
	return fmt.Sprintf("entries_%04d_%02d", now.Year(), now.Month())
}

// A balance read probes one partition of entries for the account's newest
// entry, however many months are online: the row's entries_from and the
// ledger's last commit bound the probe to the current month.
func TestBalanceReadProbesOnePartition(t *testing.T) {
	e := newFastEnv(t)
	e.addPastMonths(24)
	e.db.BalanceCheckpoint = time.Hour
	cache := postgres.NewAccountCache()
	e.write(cache, item("world", "a", 100, "k1", ""), item("world", "b", 100, "k2", ""))
	// Behind its entries from here on (the next round is an hour away).
	e.write(cache, item("a", "b", 30, "k3", ""))

	if got := e.probedMonths(postgres.AccountByIDSQL, e.lid, "a"); len(got) != 1 || got[0] != thisMonth() {
		t.Fatalf("account read probed %v, want only %s", got, thisMonth())
	}
	if a := e.account("a"); a.Balance.Posted != 70 || a.Version != 2 {
		t.Fatalf("a reads %+v v%d, want 70 v2", a.Balance, a.Version)
	}
	// The batch writer's load (another node's, without a cache) too.
	ids := []string{"a", "b", "world"}
	if got := e.probedMonths(postgres.LoadAccountsSQL, []int64{e.lid, e.lid, e.lid, e.lid}, ids); len(got) != len(ids) {
		t.Fatalf("load of %d accounts probed %v, want one partition each", len(ids), got)
	} else {
		for _, p := range got {
			if p != thisMonth() {
				t.Fatalf("load probed %s", p)
			}
		}
	}
	// A current row with many entries this month: the probe takes the
	// newest entry and stops (the bounds prune, they never filter an
	// entry of a partition left).
	e.db.BalanceCheckpoint = -1 // every commit writes its rows
	for i := range 30 {
		e.write(cache, item("world", "a", 1, fmt.Sprintf("cur-%d", i), ""))
	}
	if b, v := e.row("a"); b.Posted != 100 || v != 32 {
		t.Fatalf("a's row %+v v%d, want current (100 v32)", b, v)
	}
	got, plan := e.probe(postgres.AccountByIDSQL, e.lid, "a")
	if len(got) != 1 || got[0] != thisMonth() || filteredScan(plan) {
		t.Fatalf("a current: probed %v, plan:\n%s", got, plan)
	}
	if a := e.account("a"); a.Balance.Posted != 100 || a.Version != 32 {
		t.Fatalf("a reads %+v v%d", a.Balance, a.Version)
	}
	// c, created before the ledger's first commit, has no bound until
	// its first checkpoint: the ledger had no time yet, and a bound from
	// the database's clock could be later than the first commit's time,
	// which comes from a node's clock. Its read is right, if not pruned.
	if a := e.account("c"); a.Balance.Posted != 0 || a.Version != 0 {
		t.Fatalf("c reads %+v v%d, want 0 v0", a.Balance, a.Version)
	}
	// d, created after it, has its bound from creation: the ledger's time.
	if _, err := e.db.CreateAccounts(e.ctx, e.lid, []ledgerd.NewAccount{{ID: "d", Asset: "USD"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.probedMonths(postgres.AccountByIDSQL, e.lid, "d"); len(got) != 1 || got[0] != thisMonth() {
		t.Fatalf("read of an account without entries probed %v", got)
	}

	// A row brought up to date by a commit that does not move it (another
	// node read it behind its entries for an item it rejected) is current
	// with a bound later than its last entry: still one probe that stops
	// at the newest entry.
	e.db.BalanceCheckpoint = time.Hour
	fresh := postgres.NewAccountCache()
	e.write(fresh, item("world", "b", 5, "b-1", ""))
	e.write(fresh, item("b", "c", 1, "b-2", ""))
	time.Sleep(5 * time.Millisecond)
	e.db.BalanceCheckpoint = time.Nanosecond
	rejected := item("b", "c", 1_000_000, "b-3", "")
	e.write(postgres.NewAccountCache(), rejected)
	if rejected.Err == nil {
		t.Fatal("the overdraft was accepted")
	}
	bal, v := e.row("b")
	if a := e.account("b"); a.Version != v || a.Balance != bal {
		t.Fatalf("b's row %+v v%d is not its balance %+v v%d", bal, v, a.Balance, a.Version)
	}
	if got, plan := e.probe(postgres.AccountByIDSQL, e.lid, "b"); len(got) != 1 || filteredScan(plan) {
		t.Fatalf("b checkpointed after its last entry: probed %v, plan:\n%s", got, plan)
	}
}

// The bounds never hide a newer entry: a row whose entries_from is months
// old (a checkpoint long ago, or a bound set by the migration) and that is
// behind its entries reads the newest one; so does a row without a bound
// (written by an older binary); and rows brought up to date by a
// checkpoint agree with the entries.
func TestBalanceReadBounds(t *testing.T) {
	e := newFastEnv(t)
	e.addPastMonths(24)
	e.db.BalanceCheckpoint = time.Hour
	cache := postgres.NewAccountCache()
	e.write(cache, item("world", "a", 100, "k1", ""))
	e.write(cache, item("a", "b", 30, "k2", ""), hold("b", "c", 20, "k3"))

	var from pgtype.UUID
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT entries_from FROM accounts WHERE ledger_id = $1 AND id = 'a'`, e.lid).Scan(&from); err != nil || !from.Valid {
		t.Fatalf("a's entries_from after its checkpoint: %v %v", from, err)
	}
	// Every entry of a is at or above its bound.
	var below int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM entries e JOIN accounts a ON a.ledger_id = e.ledger_id AND a.id = e.account_id
		WHERE e.ledger_id = $1 AND e.version > a.version AND e.transaction_id < a.entries_from`, e.lid).Scan(&below); err != nil || below != 0 {
		t.Fatalf("%d entries newer than their row below its bound (%v)", below, err)
	}

	old := time.Now().UTC().AddDate(0, -5, 0)
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE accounts SET entries_from = txid_floor($2) WHERE ledger_id = $1 AND id = 'a'`, e.lid, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE accounts SET entries_from = NULL WHERE ledger_id = $1 AND id = 'b'`, e.lid); err != nil {
		t.Fatal(err)
	}
	want := map[string]ledgerd.Balance{"a": {Posted: 70}, "b": {Posted: 30, PendingDebits: 20}, "c": {PendingCredits: 20}}
	check := func(when string) {
		t.Helper()
		for id, w := range want {
			if a := e.account(id); a.Balance != w {
				t.Fatalf("%s: %s reads %+v, want %+v", when, id, a.Balance, w)
			}
		}
	}
	check("rows behind")
	if got := e.probedMonths(postgres.AccountByIDSQL, e.lid, "a"); len(got) != 6 {
		t.Fatalf("a bounded five months back probed %v, want 6 months", got)
	}
	if got := e.probedMonths(postgres.AccountByIDSQL, e.lid, "b"); len(got) != 26 {
		t.Fatalf("b without a bound probed %v, want the 26 months up to now", got)
	}

	// Another node (no cache: it loads under the lock) decides on the
	// entries, and its checkpoint gives every row it writes a fresh bound.
	e.db.BalanceCheckpoint = 0
	other := postgres.NewAccountCache()
	e.write(other, item("a", "c", 5, "k4", ""))
	want["a"], want["c"] = ledgerd.Balance{Posted: 65}, ledgerd.Balance{Posted: 5, PendingCredits: 20}
	check("after another node's commit")
	if got := e.probedMonths(postgres.AccountByIDSQL, e.lid, "a"); len(got) != 1 || got[0] != thisMonth() {
		t.Fatalf("a after its checkpoint probed %v", got)
	}
	// The rows it wrote are exactly the balances of their newest entries.
	for id, w := range map[string]ledgerd.Balance{"a": want["a"], "c": want["c"]} {
		if b, _ := e.row(id); b != w {
			t.Fatalf("%s's row %+v, want %+v", id, b, w)
		}
	}
}

// Migration 00012 gives the rows that are current the month of their
// ledger's last commit as a bound, and none to the rows behind their
// entries; every balance reads as before it.
func TestMigrateEntriesFrom(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: ledgertest.NewEmptyDatabase(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	var lid int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO ledgers (name, last_sequence, last_created_at) VALUES ('m', 2, $1) RETURNING id`, at).Scan(&lid); err != nil {
		t.Fatal(err)
	}
	// current: row at version 2 = its newest entry; behind: row at 1,
	// entries up to 2; idle: no entries.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO accounts (ledger_id, id, asset, posted, version) VALUES
		($1, 'current', 'USD', 7, 2), ($1, 'behind', 'USD', -3, 1), ($1, 'idle', 'USD', 0, 0)`, lid); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, e := range []struct {
		seq, behind, current int64
	}{{1, -3, 3}, {2, -6, 7}} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO entries (transaction_id, ledger_id, account_id, sequence, posting_index, amount, pending, posted_after, version, created_at)
			VALUES ($1, $2, 'behind', $3, 0, -3, false, $4, $3, $6), ($1, $2, 'current', $3, 1, 3, false, $5, $3, $6)`,
			postgres.TransactionIDAt(at, r.Uint64), lid, e.seq, e.behind, e.current, at)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MigrateTo(ctx, 12); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct {
		bound   bool
		posted  int64
		version int64
	}{"current": {true, 7, 2}, "behind": {false, -6, 2}, "idle": {true, 0, 0}} {
		var bound, floor pgtype.UUID
		if err := db.Pool.QueryRow(ctx, `SELECT entries_from, txid_month($3, 0) FROM accounts WHERE ledger_id = $1 AND id = $2`, lid, id, at).Scan(&bound, &floor); err != nil {
			t.Fatal(err)
		}
		if bound.Valid != want.bound || (bound.Valid && bound != floor) {
			t.Fatalf("%s: entries_from %v, want bound %v at %v", id, bound, want.bound, floor)
		}
		a, err := db.Account(ctx, lid, id)
		if err != nil || a == nil || a.Balance.Posted != want.posted || a.Version != want.version {
			t.Fatalf("%s reads %+v (%v), want posted %d v%d", id, a, err, want.posted, want.version)
		}
	}
}

// A node whose clock is behind the database's, across a month boundary:
// the account is created this month by the database's clock, and the
// transaction that pays into it commits in the month before by the node's
// (the ledger's time, max of the node's clock and its last commit's, was
// still there). The account's bound from creation must not hide that
// entry: it is the month of the ledger's time, not of the database's
// clock (which hid it, reading the balance as 0).
func TestBalanceReadNodeClockBehindDatabase(t *testing.T) {
	e := newFastEnv(t)
	e.addPastMonths(1)
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
	cache := postgres.NewAccountCache()
	e.db.Clock = func() time.Time { return lastMonth }
	defer func() { e.db.Clock = nil }()
	e.write(cache, item("world", "a", 1, "before", ""))
	if _, err := e.db.CreateAccounts(e.ctx, e.lid, []ledgerd.NewAccount{{ID: "late", Asset: "USD"}}); err != nil {
		t.Fatal(err)
	}
	// The commit leaves the row behind its entry (the writer's next
	// checkpoint round is an hour away): the read must find the entry.
	e.db.BalanceCheckpoint = time.Hour
	e.db.Clock = func() time.Time { return lastMonth.Add(time.Millisecond) }
	e.write(cache, item("world", "late", 25, "skewed", ""))
	if b, _ := e.row("late"); b.Posted != 0 {
		t.Fatalf("late's row %+v: checkpointed, the test reads nothing through the probe", b)
	}
	if a := e.account("late"); a.Balance.Posted != 25 {
		t.Fatalf("late reads %+v, want posted 25 (its entry is in last month's partition)", a.Balance)
	}
}
