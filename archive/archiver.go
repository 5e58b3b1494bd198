package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

// Step names a point of archival after which a crash is survivable; the
// Hook sees each one.
type Step string

const (
	StepCheckpoint Step = "checkpoint" // account rows caught up, state detaching recorded
	StepDetached   Step = "detached"   // both partitions detached
	StepWritten    Step = "written"    // one ledger's file set written and recorded
	StepVerified   Step = "verified"   // one ledger's file set read back and matched
	StepDropped    Step = "dropped"    // the month's tables dropped
)

// Steps is every Step in order (tests crash after each).
var Steps = []Step{StepCheckpoint, StepDetached, StepWritten, StepVerified, StepDropped}

// leaseTTL is how long the archiver's lease lasts without renewal; it is
// renewed at every step, so only a dead archiver lets it run out.
const leaseTTL = 10 * time.Minute

// Archiver moves months of transactions and entries out of the database
// into a bucket, and back (Restore). One runs at a time across all
// processes (a lease in the archives schema).
type Archiver struct {
	DB     *postgres.DB
	Bucket *blob.Bucket
	Log    *slog.Logger
	// IdempotencyTTL is how long idempotency records live (postgres.DB's):
	// a month leaves only when every record that could replay one of its
	// transactions has expired, so replays keep working for their
	// retention.
	IdempotencyTTL time.Duration
	// Now is the clock; configurable for testing.
	Now func() time.Time
	// Hook, when set, runs after each step; an error stops the run there
	// as a crash would. Configurable for testing.
	Hook   func(Step, time.Time) error
	holder string
}

func (a *Archiver) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *Archiver) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Report is what a run did.
type Report struct {
	Archived []string // months archived (YYYY-MM)
	Skipped  []string // months kept, with why
	Rows     int64    // account rows the catch-up checkpoints wrote
}

// ErrBusy means another archiver holds the lease.
var ErrBusy = errors.New("another archiver is running")

func (a *Archiver) lease(ctx context.Context) error {
	if a.holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		a.holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	ok, err := a.DB.AcquireArchiveLease(ctx, a.holder, leaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return ErrBusy
	}
	return nil
}

// keepLease renews the lease in the background while a run works (a
// month's files may take longer to write than the lease lasts); when it is
// lost, the returned context ends, so that two archivers never work on
// the same month.
func (a *Archiver) keepLease(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(leaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.lease(ctx); err != nil && ctx.Err() == nil {
					cancel(fmt.Errorf("archive lease lost: %w", err))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// hold takes the lease, keeps it renewed for the returned context and
// checks that the tables carry only the columns the archive does; done
// stops renewing and releases it.
func (a *Archiver) hold(ctx context.Context) (_ context.Context, done func(), _ error) {
	if err := a.lease(ctx); err != nil {
		return ctx, nil, err
	}
	ctx, stop := a.keepLease(ctx)
	done = func() { stop(); a.release() }
	if err := a.DB.CheckArchiveColumns(ctx); err != nil {
		done()
		return ctx, nil, err
	}
	return ctx, done, nil
}

func (a *Archiver) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.DB.ReleaseArchiveLease(ctx, a.holder)
}

// step renews the lease and runs the hook.
func (a *Archiver) step(ctx context.Context, s Step, month time.Time) error {
	if err := a.lease(ctx); err != nil {
		return err
	}
	if a.Hook != nil {
		if err := a.Hook(s, month); err != nil {
			return fmt.Errorf("%s after %s: %w", month.Format("2006-01"), s, err)
		}
	}
	return nil
}

// Run archives every month that may leave: unfinished ones first (a
// previous run stopped), then each month whose partitions hold only rows
// older than the retention of every ledger with rows in it.
// Months given in only are archived whatever the policy says (a restored
// month included), as long as nothing else forbids it.
func (a *Archiver) Run(ctx context.Context, only ...time.Time) (*Report, error) {
	ctx, done, err := a.hold(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rep := &Report{}
	months, err := a.DB.MonthPartitions(ctx)
	if err != nil {
		return rep, err
	}
	unfinished, err := a.DB.UnfinishedArchiveMonths(ctx)
	if err != nil {
		return rep, err
	}
	for _, m := range unfinished {
		if !slices.ContainsFunc(months, m.Equal) {
			months = append(months, m)
		}
	}
	slices.SortFunc(months, time.Time.Compare)
	for _, m := range months {
		forced := slices.ContainsFunc(only, func(o time.Time) bool { return postgres.Month(o).Equal(m) })
		if len(only) > 0 && !forced && !slices.ContainsFunc(unfinished, m.Equal) {
			continue
		}
		why, err := a.archiveMonth(ctx, m, forced, rep)
		if err != nil {
			return rep, err
		}
		if why != "" {
			rep.Skipped = append(rep.Skipped, m.Format("2006-01")+": "+why)
			continue
		}
		rep.Archived = append(rep.Archived, m.Format("2006-01"))
	}
	return rep, nil
}

// eligible says why a month with these ledgers must stay ("" if it may
// go): the cheap checks first, the scan for pending holds last.
func (a *Archiver) eligible(ctx context.Context, month time.Time, ledgers []postgres.MonthLedger, states map[int64]postgres.ArchiveState, forced bool) (string, error) {
	now := a.now()
	end := month.AddDate(0, 1, 0)
	if len(ledgers) == 0 {
		// An empty month: EnsurePartitions keeps last month's on hand.
		if end.After(postgres.Month(now).AddDate(0, -1, 0)) {
			return "empty, and not older than last month", nil
		}
		return "", nil
	}
	if end.Add(a.IdempotencyTTL).After(now) {
		return "idempotency records of its transactions may still be replayed", nil
	}
	for _, l := range ledgers {
		switch {
		case states[l.ID] == postgres.ArchiveRestored && !forced:
			return fmt.Sprintf("ledger %s restored it; name the month to archive it again", l.Name), nil
		case !forced && end.After(postgres.Month(now).AddDate(0, -l.HotMonths, 0)):
			return fmt.Sprintf("within the %d hot months of ledger %s", l.HotMonths, l.Name), nil
		}
	}
	txTable, _ := postgres.MonthTables(month)
	for _, l := range ledgers {
		n, err := a.DB.PendingHolds(ctx, txTable, l.ID)
		if err != nil || n > 0 {
			return fmt.Sprintf("ledger %s has %d pending holds in it", l.Name, n), err
		}
	}
	return "", nil
}

// archiveMonth takes one month through every remaining step; it returns
// why the month stays when it is not eligible.
func (a *Archiver) archiveMonth(ctx context.Context, month time.Time, forced bool, rep *Report) (string, error) {
	txTable, enTable := postgres.MonthTables(month)
	txState, err := a.DB.Partition(ctx, txTable)
	if err != nil {
		return "", err
	}
	enState, err := a.DB.Partition(ctx, enTable)
	if err != nil {
		return "", err
	}
	var ledgers []postgres.MonthLedger
	if txState != postgres.PartitionAbsent {
		if ledgers, err = a.DB.MonthLedgers(ctx, txTable); err != nil {
			return "", err
		}
	}
	known, knownStates, err := a.DB.ArchiveLedgers(ctx, month)
	if err != nil {
		return "", err
	}
	states := map[int64]postgres.ArchiveState{}
	for i, l := range known {
		states[l.ID] = knownStates[i]
		if (knownStates[i] == postgres.ArchiveDetaching || knownStates[i] == postgres.ArchiveWritten ||
			knownStates[i] == postgres.ArchiveVerified) && !slices.ContainsFunc(ledgers, func(m postgres.MonthLedger) bool { return m.ID == l.ID }) {
			ledgers = append(ledgers, l)
		}
	}
	attached := txState == postgres.PartitionAttached && enState == postgres.PartitionAttached
	if attached {
		// Nothing has happened to the month yet: the policy decides.
		why, err := a.eligible(ctx, month, ledgers, states, forced)
		if err != nil || why != "" {
			return why, err
		}
	}
	log := a.log().With("month", month.Format("2006-01"))

	// 1. Every account row past the month, before any of it leaves.
	if attached {
		for _, l := range ledgers {
			n, err := a.DB.CatchUpCheckpoints(ctx, l.ID)
			if err != nil {
				return "", err
			}
			rep.Rows += n
		}
	}
	if enState != postgres.PartitionAbsent {
		stale, err := a.DB.StaleCheckpoints(ctx, enTable)
		if err != nil {
			return "", err
		}
		if stale > 0 {
			return "", fmt.Errorf("%s: %d entries are newer than their account rows after the catch-up checkpoint", enTable, stale)
		}
	}
	for _, l := range ledgers {
		if s, ok := states[l.ID]; !ok || s == postgres.ArchiveRestored {
			// The sequence range goes in first: reads of the ledger's
			// history know which of their answers the month can change.
			if err := a.DB.SetArchive(ctx, postgres.Archive{LedgerID: l.ID, Month: month, State: postgres.ArchiveDetaching,
				FirstSeq: l.FirstSeq, LastSeq: l.LastSeq}); err != nil {
				return "", err
			}
			states[l.ID] = postgres.ArchiveDetaching
		}
	}
	if err := a.step(ctx, StepCheckpoint, month); err != nil {
		return "", err
	}

	// 2. Detach: from here on nothing can write to the month.
	for parent, table := range map[string]string{"transactions": txTable, "entries": enTable} {
		if err := a.DB.DetachPartition(ctx, parent, table); err != nil {
			return "", err
		}
	}
	log.Info("archive: detached", "ledgers", len(ledgers))
	if err := a.step(ctx, StepDetached, month); err != nil {
		return "", err
	}

	// 3. Per ledger: write the set (unless written before), read it back.
	for _, l := range ledgers {
		if states[l.ID] == postgres.ArchiveVerified || states[l.ID] == postgres.ArchiveDropped {
			continue
		}
		row, err := a.DB.ArchiveOf(ctx, l.ID, month)
		if err != nil {
			return "", err
		}
		if txState == postgres.PartitionAbsent || enState == postgres.PartitionAbsent {
			return "", fmt.Errorf("ledger %s %s is %s but its tables are gone: check the bucket and the archives table",
				l.Name, month.Format("2006-01"), states[l.ID])
		}
		var m *Manifest
		if row != nil && row.Manifest != nil {
			if m, err = parseManifest(row.Manifest); err != nil {
				return "", err
			}
		} else {
			if m, err = writeSet(ctx, a.Bucket, a.DB, txTable, enTable, l, month); err != nil {
				return "", err
			}
			data, _ := json.Marshal(m)
			if err := a.DB.SetArchive(ctx, postgres.Archive{LedgerID: l.ID, Month: month, State: postgres.ArchiveWritten,
				FirstSeq: m.FirstSequence, LastSeq: m.LastSequence, Manifest: data}); err != nil {
				return "", err
			}
			if err := a.step(ctx, StepWritten, month); err != nil {
				return "", err
			}
		}
		if err := verifySet(ctx, a.Bucket, a.DB, txTable, enTable, m); err != nil {
			return "", fmt.Errorf("verify ledger %s %s: %w", l.Name, month.Format("2006-01"), err)
		}
		// Where `ledgerd verify` starts for these accounts once the
		// month is gone (before verified: a verified month may drop).
		if err := a.DB.RecordArchivedBalances(ctx, enTable, l.ID); err != nil {
			return "", err
		}
		if err := a.DB.SetArchive(ctx, postgres.Archive{LedgerID: l.ID, Month: month, State: postgres.ArchiveVerified}); err != nil {
			return "", err
		}
		states[l.ID] = postgres.ArchiveVerified
		log.Info("archive: verified", "ledger", l.Name, "transactions", m.Files[TransactionsFile].Rows, "entries", m.Files[EntriesFile].Rows)
		if err := a.step(ctx, StepVerified, month); err != nil {
			return "", err
		}
	}

	// 4. Every set verified: the tables may go. Entries first, so that a
	// crash in between leaves the transactions table that names the month.
	for _, table := range []string{enTable, txTable} {
		if err := a.DB.DropDetached(ctx, table); err != nil {
			return "", err
		}
	}
	for _, l := range ledgers {
		if err := a.DB.SetArchive(ctx, postgres.Archive{LedgerID: l.ID, Month: month, State: postgres.ArchiveDropped}); err != nil {
			return "", err
		}
	}
	log.Info("archive: dropped")
	return "", a.step(ctx, StepDropped, month)
}
