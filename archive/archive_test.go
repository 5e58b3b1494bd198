package archive_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/archive"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

func TestMain(m *testing.M) {
	if os.Getenv(killStepEnv) != "" {
		killedArchiver()
	}
	ledgertest.Main(m)
}

// env is a database holding two ledgers with history in two past months
// (written through the batch writer with its clock set back) and in the
// current one, and an archiver over a local directory.
type env struct {
	t            *testing.T
	ctx          context.Context
	db           *postgres.DB
	arc          *archive.Archiver
	bucket       *blob.Bucket
	shop, other  int64
	june, july   time.Time
	holdID       string
	seq          int
	idem         string // an idempotency key of a June transfer
	idemTxID     string
	juneTxID     string
	accountIDs   []string
	transactions int
	caches       map[int64]*postgres.AccountCache
	dbURL        string
	bucketURL    string
}

func newEnv(t *testing.T, bucketURL string) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := ledgertest.NewDatabase(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	// A writer that crashed leaves its account rows behind: with an hour
	// between checkpoints and a new cache per batch, most rows lag.
	db.BalanceCheckpoint = time.Hour
	now := postgres.Month(time.Now())
	e := &env{t: t, ctx: ctx, db: db, dbURL: dbURL, june: now.AddDate(0, -6, 0), july: now.AddDate(0, -5, 0),
		caches: map[int64]*postgres.AccountCache{}}
	for _, m := range []time.Time{e.june, e.july} {
		if err := db.CreateMonthPartitions(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"shop", "other"} {
		l, err := db.CreateLedger(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "shop" {
			e.shop = l.ID
		} else {
			e.other = l.ID
		}
		nas := []ledgerd.NewAccount{{ID: "world", Asset: "USD"}, {ID: "eur:world", Asset: "EUR"}}
		for _, id := range []string{"a", "b", "c"} {
			nas = append(nas, ledgerd.NewAccount{ID: id, Asset: "USD"}, ledgerd.NewAccount{ID: "eur:" + id, Asset: "EUR"})
		}
		if _, err := db.CreateAccounts(ctx, l.ID, nas); err != nil {
			t.Fatal(err)
		}
	}
	e.accountIDs = []string{"world", "a", "b", "c", "eur:world", "eur:a", "eur:b", "eur:c"}
	e.history()
	if bucketURL == "" {
		if bucketURL, err = archive.DirURL(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	e.bucketURL = bucketURL
	if e.bucket, err = blob.OpenBucket(ctx, bucketURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.bucket.Close() })
	e.arc = &archive.Archiver{DB: db, Bucket: e.bucket, IdempotencyTTL: 24 * time.Hour}
	db.Archive = archive.NewReader(e.bucket)
	return e
}

// write commits items in ledger lid at time at, each in its own batch,
// and returns the transactions. Each ledger has one writer cache (as a
// node has), so after its first commit the account rows lag behind.
func (e *env) write(lid int64, at time.Time, items ...*ledgerd.WriteItem) []*ledgerd.Transaction {
	e.t.Helper()
	e.db.Clock = func() time.Time { return at }
	defer func() { e.db.Clock = nil }()
	var out []*ledgerd.Transaction
	for _, it := range items {
		if e.caches[lid] == nil {
			e.caches[lid] = postgres.NewAccountCache()
		}
		if err := e.db.WriteBatch(e.ctx, lid, []*ledgerd.WriteUnit{{Items: []*ledgerd.WriteItem{it}}}, e.caches[lid]); err != nil {
			e.t.Fatal(err)
		}
		if it.Err != nil {
			e.t.Fatalf("write at %s: %v", at, it.Err)
		}
		out = append(out, it.Result)
		e.transactions++
	}
	return out
}

func (e *env) transfer(from, to string, amount int64, asset string) *ledgerd.WriteItem {
	e.seq++
	key := fmt.Sprintf("k%d", e.seq)
	return &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{
		Postings: []ledgerd.Posting{{Source: from, Destination: to, Amount: amount, Asset: asset}}},
		IdempotencyKey: key, RequestHash: []byte(key)}
}

func (e *env) history() {
	day := func(m time.Time, d int) time.Time { return m.AddDate(0, 0, d-1).Add(10 * time.Hour) }
	for _, lid := range []int64{e.shop, e.other} {
		txs := e.write(lid, day(e.june, 2), e.transfer("world", "a", 1000, "USD"), e.transfer("eur:world", "eur:a", 500, "EUR"))
		if lid == e.shop {
			e.juneTxID, e.idem, e.idemTxID = txs[0].ID, "k1", txs[0].ID
		}
		e.write(lid, day(e.june, 10), e.transfer("a", "b", 300, "USD"), e.transfer("eur:a", "eur:c", 120, "EUR"))
		e.write(lid, day(e.june, 20), e.transfer("b", "c", 50, "USD"))
		e.write(lid, day(e.july, 3), e.transfer("a", "c", 25, "USD"), e.transfer("world", "b", 7, "USD"))
	}
	// A hold in July, resolved later: until then July cannot leave.
	h := e.transfer("world", "c", 40, "USD")
	h.Request.Pending = true
	e.holdID = e.write(e.shop, day(e.july, 9), h)[0].ID
	// This month: the accounts move on, so that their newest entries are
	// not the archived ones.
	e.write(e.shop, time.Now(), e.transfer("a", "b", 1, "USD"))
}

func (e *env) voidHold() {
	e.seq++
	key := fmt.Sprintf("k%d", e.seq)
	e.write(e.shop, time.Now(), &ledgerd.WriteItem{Request: &ledgerd.TransactionRequest{},
		Action: &ledgerd.Action{Kind: ledgerd.ActionVoid, Target: e.holdID}, IdempotencyKey: key, RequestHash: []byte(key)})
}

// view is what a ledger shows of its history: balances, balances at
// moments within and after the archived months, and June's statement.
type view struct {
	Balances   map[string]ledgerd.Balance
	At         map[string]int64
	Statements map[string]*ledgerd.Statement
}

func (e *env) view(lid int64) view {
	e.t.Helper()
	v := view{Balances: map[string]ledgerd.Balance{}, At: map[string]int64{}, Statements: map[string]*ledgerd.Statement{}}
	moments := []time.Time{e.june.AddDate(0, 0, 5), e.june.AddDate(0, 0, 15), e.july.AddDate(0, 0, 20), time.Now().Add(time.Hour)}
	from, to := e.june, e.july
	for _, id := range e.accountIDs {
		a, err := e.db.Account(e.ctx, lid, id)
		if err != nil {
			e.t.Fatal(err)
		}
		v.Balances[id] = a.Balance
		for i, m := range moments {
			p, _, err := e.db.BalanceAt(e.ctx, lid, id, m)
			if err != nil {
				e.t.Fatal(err)
			}
			v.At[fmt.Sprintf("%s@%d", id, i)] = p
		}
		st, err := e.db.Statement(e.ctx, lid, id, ledgerd.StatementFilter{From: &from, To: &to, Limit: 100})
		if err != nil {
			e.t.Fatal(err)
		}
		for i := range st.Lines {
			st.Lines[i].CreatedAt = st.Lines[i].CreatedAt.UTC() // the same instant, whatever the zone it is read in
		}
		v.Statements[id] = st
	}
	return v
}

func (e *env) partition(table string) postgres.PartitionState {
	e.t.Helper()
	st, err := e.db.Partition(e.ctx, table)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) state(lid int64, month time.Time) postgres.ArchiveState {
	e.t.Helper()
	a, err := e.db.ArchiveOf(e.ctx, lid, month)
	if err != nil {
		e.t.Fatal(err)
	}
	if a == nil {
		return ""
	}
	return a.State
}

func (e *env) keys() []string {
	e.t.Helper()
	var out []string
	it := e.bucket.List(nil)
	for {
		o, err := it.Next(e.ctx)
		if err != nil {
			break
		}
		out = append(out, o.Key)
	}
	return out
}

// The round trip on two ledgers sharing the monthly partitions: the
// policy of every ledger with rows in a month decides, a pending hold
// keeps its month, archival leaves balances as they were, and a restore
// brings back statements and balance history identical to before.
//
// The bucket is a local directory, and an S3 server (gofakes3, on
// loopback, path-style addressing) through the s3blob driver.
func TestArchiveRestoreRoundTrip(t *testing.T) {
	t.Run("dir", func(t *testing.T) { roundTrip(t, "") })
	t.Run("s3", func(t *testing.T) { roundTrip(t, s3URL(t)) })
}

// s3URL starts an S3-compatible server on loopback with a bucket
// "archive" and returns the bucket's URL for LEDGERD_BLOB_URL.
func s3URL(t *testing.T) string {
	backend := s3mem.New()
	if err := backend.CreateBucket("archive"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	q := url.Values{"endpoint": {srv.URL}, "region": {"us-east-1"}, "use_path_style": {"true"}, "disable_https": {"true"},
		"anonymous": {"true"}, "request_checksum_calculation": {"when_required"}, "response_checksum_validation": {"when_required"}}
	return "s3://archive?" + q.Encode()
}

func roundTrip(t *testing.T, bucketURL string) {
	e := newEnv(t, bucketURL)
	before := map[int64]view{e.shop: e.view(e.shop), e.other: e.view(e.other)}
	juneTx, juneEn := postgres.MonthTables(e.june)
	julyTx, _ := postgres.MonthTables(e.july)

	// other keeps a year hot: neither month may leave.
	if _, err := e.db.SetHotMonths(e.ctx, e.other, 12); err != nil {
		t.Fatal(err)
	}
	rep, err := e.arc.Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Archived) != 0 || e.partition(juneTx) != postgres.PartitionAttached {
		t.Fatalf("archived %v under a 12-month policy (skipped %v)", rep.Archived, rep.Skipped)
	}
	if !strings.Contains(strings.Join(rep.Skipped, "\n"), "within the 12 hot months of ledger other") {
		t.Fatalf("skipped: %q", rep.Skipped)
	}
	if _, err := e.db.SetHotMonths(e.ctx, e.other, 3); err != nil {
		t.Fatal(err)
	}
	// June leaves; July holds a pending hold.
	if rep, err = e.arc.Run(e.ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{e.june.Format("2006-01")}; !reflect.DeepEqual(rep.Archived, want) {
		t.Fatalf("archived %v, want %v (skipped %v)", rep.Archived, want, rep.Skipped)
	}
	if !strings.Contains(strings.Join(rep.Skipped, "\n"), "ledger shop has 1 pending holds") {
		t.Fatalf("skipped: %q", rep.Skipped)
	}
	if rep.Rows == 0 {
		t.Fatal("the catch-up checkpoint wrote no row, yet the writer left rows behind")
	}
	e.voidHold()
	// The void moved pending totals, not posted balances or statements.
	v := before[e.shop]
	v.Balances = e.view(e.shop).Balances
	before[e.shop] = v
	if rep, err = e.arc.Run(e.ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{e.july.Format("2006-01")}; !reflect.DeepEqual(rep.Archived, want) {
		t.Fatalf("archived %v, want %v (skipped %v)", rep.Archived, want, rep.Skipped)
	}
	for _, table := range []string{juneTx, juneEn, julyTx} {
		if st := e.partition(table); st != postgres.PartitionAbsent {
			t.Fatalf("%s is %s after archival", table, st)
		}
	}
	for _, lid := range []int64{e.shop, e.other} {
		for _, m := range []time.Time{e.june, e.july} {
			if s := e.state(lid, m); s != postgres.ArchiveDropped {
				t.Fatalf("ledger %d %s: state %s", lid, m.Format("2006-01"), s)
			}
		}
		// Balances, balance history and statements read as before: the
		// archived months' part from their files.
		after := e.view(lid)
		for id, st := range after.Statements {
			if !reflect.DeepEqual(st, before[lid].Statements[id]) {
				t.Fatalf("ledger %d statement of %s after archival:\n%+v\nbefore:\n%+v", lid, id, st, before[lid].Statements[id])
			}
		}
		if !reflect.DeepEqual(after, before[lid]) {
			t.Fatalf("ledger %d after archival:\n%+v\nbefore:\n%+v", lid, after, before[lid])
		}
	}
	if _, err := e.db.Verify(e.ctx, ""); err != nil {
		t.Fatalf("verify after archival: %v", err)
	}
	// A transaction of an archived month: 410 archived, naming the files.
	var le *ledgerd.Error
	if _, err := e.db.Transaction(e.ctx, e.shop, e.juneTxID); !errors.As(err, &le) || le.Code != ledgerd.CodeArchived ||
		!strings.Contains(le.Detail, "ledgers/shop/"+e.june.Format("2006-01")+"/transactions.parquet") {
		t.Fatalf("archived transaction: %v", err)
	}
	// Without the bucket, history of an archived month is unavailable
	// rather than wrong.
	e.db.Archive = nil
	if _, _, err := e.db.BalanceAt(e.ctx, e.shop, "a", e.june.AddDate(0, 0, 15)); !errors.Is(err, postgres.ErrUnavailable) {
		t.Fatalf("balance at an archived moment without the bucket: %v", err)
	}
	e.db.Archive = archive.NewReader(e.bucket)
	// One file set per ledger per month, each file as its manifest says.
	if keys := e.keys(); len(keys) != 2*2*4 {
		t.Fatalf("bucket holds %d keys, want 16: %v", len(keys), keys)
	}
	m, err := archive.ReadManifest(e.ctx, e.bucket, "shop", e.june)
	if err != nil {
		t.Fatal(err)
	}
	if m.FirstSequence != 1 || m.LastSequence != 5 || m.Files[archive.TransactionsFile].Rows != 5 || m.Files[archive.EntriesFile].Rows != 10 {
		t.Fatalf("manifest of shop June: %+v", m)
	}
	for name, fi := range m.Files {
		data, err := e.bucket.ReadAll(e.ctx, fi.Key)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != fi.SHA256 || int64(len(data)) != fi.Bytes {
			t.Fatalf("%s: checksum of the stored file differs from the manifest", name)
		}
	}

	// Restore June of shop: its history reads as it did.
	if _, err := e.arc.Restore(e.ctx, "shop", e.june); err != nil {
		t.Fatal(err)
	}
	if s := e.state(e.shop, e.june); s != postgres.ArchiveRestored {
		t.Fatalf("state after restore: %s", s)
	}
	if _, err := e.arc.Restore(e.ctx, "shop", e.june); !errors.Is(err, archive.ErrNotArchived) {
		t.Fatalf("second restore: %v", err)
	}
	if _, err := e.arc.Restore(e.ctx, "shop", e.july); err != nil {
		t.Fatal(err)
	}
	after := e.view(e.shop)
	if !reflect.DeepEqual(after, before[e.shop]) {
		t.Fatalf("shop after restore:\n%+v\nbefore:\n%+v", after, before[e.shop])
	}
	if _, err := e.db.Verify(e.ctx, ""); err != nil {
		t.Fatalf("verify after restore: %v", err)
	}
	if tx, err := e.db.Transaction(e.ctx, e.shop, e.juneTxID); err != nil || tx == nil || tx.ID != e.juneTxID {
		t.Fatalf("restored transaction: %+v, %v", tx, err)
	}
	// A restored month stays until named; then it is checked against the
	// files it came from and leaves again, without new files.
	if rep, err = e.arc.Run(e.ctx); err != nil || len(rep.Archived) != 0 {
		t.Fatalf("run after restore archived %v (%v)", rep.Archived, err)
	}
	if rep, err = e.arc.Run(e.ctx, e.june); err != nil || len(rep.Archived) != 1 {
		t.Fatalf("run naming June archived %v (%v)", rep, err)
	}
	if s := e.state(e.shop, e.june); s != postgres.ArchiveDropped {
		t.Fatalf("state after archiving the restored month again: %s", s)
	}
	if keys := e.keys(); len(keys) != 16 {
		t.Fatalf("bucket holds %d keys after re-archival: %v", len(keys), keys)
	}
}

// A file changed in the bucket fails verification with a message naming
// it, and the restore attaches nothing.
func TestRestoreTamperedArchive(t *testing.T) {
	e := newEnv(t, "")
	e.voidHold()
	if _, err := e.arc.Run(e.ctx); err != nil {
		t.Fatal(err)
	}
	key := archive.Prefix("other", e.june) + archive.EntriesFile
	data, err := e.bucket.ReadAll(e.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := e.bucket.WriteAll(e.ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.arc.Restore(e.ctx, "other", e.june)
	if !errors.Is(err, archive.ErrTampered) || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore of a tampered archive: %v", err)
	}
	if s := e.state(e.other, e.june); s != postgres.ArchiveDropped {
		t.Fatalf("state after a failed restore: %s", s)
	}
	// Verification still catches a balance changed behind the ledger's
	// back where the account's history is all archived (eur:c of other
	// moved in June only).
	if _, err := e.db.Verify(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(e.ctx, `UPDATE accounts SET posted = posted + 1 WHERE ledger_id = $1 AND id = 'eur:c'`, e.other); err != nil {
		t.Fatal(err)
	}
	var mm *postgres.Mismatch
	if _, err := e.db.Verify(e.ctx, "other"); !errors.As(err, &mm) || mm.What != "account eur:c" {
		t.Fatalf("verify after changing an archived account's balance: %v", err)
	}
	tx, _ := postgres.MonthTables(e.june)
	if st := e.partition(tx); st != postgres.PartitionAbsent {
		var n int64
		_ = e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM `+tx+` WHERE ledger_id = $1`, e.other).Scan(&n)
		if n != 0 {
			t.Fatalf("a failed restore attached %d transactions", n)
		}
	}
}

var errCrash = errors.New("crash")

// A crash after any step of archival leaves every ledger's month either
// in the database (its partition, attached or detached) or in a verified
// archive, and a rerun finishes: same balances, one file set per ledger
// and month, nothing left over.
func TestArchiveCrashAtEachStep(t *testing.T) {
	for _, step := range archive.Steps {
		t.Run(string(step), func(t *testing.T) {
			e := newEnv(t, "")
			e.voidHold()
			before := map[int64]view{e.shop: e.view(e.shop), e.other: e.view(e.other)}
			crashed := false
			e.arc.Hook = func(s archive.Step, m time.Time) error {
				if s == step && !crashed {
					crashed = true
					return errCrash
				}
				return nil
			}
			if _, err := e.arc.Run(e.ctx); !errors.Is(err, errCrash) {
				t.Fatalf("run with a crash after %s: %v", step, err)
			}
			e.arc.Hook = nil
			e.afterCrash(step, before)
		})
	}
}

// killStepEnv names the step after which the helper process kills itself.
const killStepEnv = "LEDGERD_TEST_ARCHIVE_KILL_AFTER"

// killedArchiver is the helper process of TestArchiveKilledAtEachStep: an
// archiver that sends itself SIGKILL right after the step named in its
// environment — no deferred cleanup, its lease left behind.
func killedArchiver() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: os.Getenv("LEDGERD_TEST_DB"), MaxConns: 3})
	if err != nil {
		panic(err)
	}
	b, err := blob.OpenBucket(ctx, os.Getenv("LEDGERD_TEST_BUCKET"))
	if err != nil {
		panic(err)
	}
	step := archive.Step(os.Getenv(killStepEnv))
	arc := &archive.Archiver{DB: db, Bucket: b, IdempotencyTTL: 24 * time.Hour, Hook: func(s archive.Step, _ time.Time) error {
		if s == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}}
	_, err = arc.Run(ctx)
	fmt.Fprintln(os.Stderr, "the archiver finished without reaching", step, err)
	os.Exit(3)
}

// The same with a real process killed (SIGKILL) after each step: the rerun
// waits out the dead archiver's lease, then finishes.
func TestArchiveKilledAtEachStep(t *testing.T) {
	for _, step := range archive.Steps {
		t.Run(string(step), func(t *testing.T) {
			e := newEnv(t, "")
			e.voidHold()
			before := map[int64]view{e.shop: e.view(e.shop), e.other: e.view(e.other)}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), killStepEnv+"="+string(step), "LEDGERD_TEST_DB="+e.dbURL, "LEDGERD_TEST_BUCKET="+e.bucketURL)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper after %s: %v\n%s", step, err, out)
			}
			if _, err := e.arc.Run(e.ctx); !errors.Is(err, archive.ErrBusy) {
				t.Fatalf("run under the dead archiver's lease: %v", err)
			}
			// Time passes: the lease runs out.
			if _, err := e.db.Pool.Exec(e.ctx, `UPDATE archive_lease SET expires_at = clock_timestamp() - interval '1 second'`); err != nil {
				t.Fatal(err)
			}
			e.afterCrash(step, before)
		})
	}
}

// afterCrash checks what an archiver stopped after step left, then reruns
// it and checks the outcome against the views from before.
func (e *env) afterCrash(step archive.Step, before map[int64]view) {
	t := e.t
	txTable, enTable := postgres.MonthTables(e.june)
	for _, lid := range []int64{e.shop, e.other} {
		var inDB int64
		for _, table := range []string{txTable, enTable} {
			if e.partition(table) == postgres.PartitionAbsent {
				continue
			}
			var n int64
			if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM `+table+` WHERE ledger_id = $1`, lid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			inDB += n
		}
		s := e.state(lid, e.june)
		if inDB != 15 && s != postgres.ArchiveVerified && s != postgres.ArchiveDropped {
			t.Fatalf("ledger %d June after a crash at %s: %d rows in the database and archive state %q", lid, step, inDB, s)
		}
	}
	// Meanwhile reads of the month answer from the database, the
	// verified archive, or (detached, not yet verified) 503: never
	// a wrong answer.
	_, txErr := e.db.Transaction(e.ctx, e.shop, e.juneTxID)
	_, _, atErr := e.db.BalanceAt(e.ctx, e.shop, "a", e.june.AddDate(0, 0, 15))
	switch s := e.state(e.shop, e.june); s {
	case postgres.ArchiveDetaching, postgres.ArchiveWritten:
		if e.partition(txTable) == postgres.PartitionDetached &&
			(!errors.Is(txErr, postgres.ErrUnavailable) || !errors.Is(atErr, postgres.ErrUnavailable)) {
			t.Fatalf("reads of a detached month: %v, %v", txErr, atErr)
		}
	case postgres.ArchiveVerified, postgres.ArchiveDropped:
		var le *ledgerd.Error
		if !errors.As(txErr, &le) || le.Code != ledgerd.CodeArchived || atErr != nil {
			t.Fatalf("reads of an archived month (%s): %v, %v", s, txErr, atErr)
		}
	}
	rep, err := e.arc.Run(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Archived, e.july.Format("2006-01")) {
		t.Fatalf("rerun archived %v", rep.Archived)
	}
	for _, table := range []string{txTable, enTable} {
		if st := e.partition(table); st != postgres.PartitionAbsent {
			t.Fatalf("%s is %s after the rerun", table, st)
		}
	}
	for _, lid := range []int64{e.shop, e.other} {
		if s := e.state(lid, e.june); s != postgres.ArchiveDropped {
			t.Fatalf("ledger %d June: %s after the rerun", lid, s)
		}
		if after := e.view(lid); !reflect.DeepEqual(after.Balances, before[lid].Balances) {
			t.Fatalf("balances after the rerun %v, before %v", after.Balances, before[lid].Balances)
		}
	}
	if keys := e.keys(); len(keys) != 16 {
		t.Fatalf("bucket holds %d keys: %v", len(keys), keys)
	}
	for _, lid := range []int64{e.shop, e.other} {
		for _, m := range []time.Time{e.june, e.july} {
			if _, err := e.arc.Restore(e.ctx, map[int64]string{e.shop: "shop", e.other: "other"}[lid], m); err != nil {
				t.Fatalf("restore after the rerun: %v", err)
			}
		}
		if after := e.view(lid); !reflect.DeepEqual(after, before[lid]) {
			t.Fatalf("ledger %d restored after a crash at %s:\n%+v\nbefore:\n%+v", lid, step, after, before[lid])
		}
	}
}

// One archiver at a time: while another holder's lease lasts (here: a
// process that died mid-run), a run is refused; once it has expired the
// run takes over and finishes.
func TestArchiveLease(t *testing.T) {
	e := newEnv(t, "")
	e.voidHold()
	if ok, err := e.db.AcquireArchiveLease(e.ctx, "dead-worker", time.Hour); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if _, err := e.arc.Run(e.ctx); !errors.Is(err, archive.ErrBusy) {
		t.Fatalf("run under another holder's lease: %v", err)
	}
	if _, err := e.arc.Restore(e.ctx, "shop", e.june); !errors.Is(err, archive.ErrNotArchived) {
		t.Fatalf("restore of a month not archived: %v", err)
	}
	if ok, err := e.db.AcquireArchiveLease(e.ctx, "dead-worker", -time.Second); err != nil || !ok {
		t.Fatalf("expire the lease: %v %v", ok, err)
	}
	rep, err := e.arc.Run(e.ctx)
	if err != nil || len(rep.Archived) != 2 {
		t.Fatalf("run after the lease expired: %+v %v", rep, err)
	}
	if ok, err := e.db.AcquireArchiveLease(e.ctx, "next", time.Minute); err != nil || !ok {
		t.Fatalf("the run kept its lease after finishing: %v %v", ok, err)
	}
}

// A column added to transactions that the archive does not carry stops
// archival before anything moves (a restore would lose it).
func TestArchiveRefusesUnknownColumns(t *testing.T) {
	e := newEnv(t, "")
	e.voidHold()
	if _, err := e.db.Pool.Exec(e.ctx, `ALTER TABLE transactions ADD COLUMN note text`); err != nil {
		t.Fatal(err)
	}
	_, err := e.arc.Run(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "transactions has columns") {
		t.Fatalf("run with an unknown column: %v", err)
	}
	tx, _ := postgres.MonthTables(e.june)
	if st := e.partition(tx); st != postgres.PartitionAttached {
		t.Fatalf("%s is %s", tx, st)
	}
}
