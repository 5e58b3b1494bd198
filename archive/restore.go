package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
)

// ErrNotArchived means the ledger's month has no dropped archive to
// restore.
var ErrNotArchived = errors.New("no archived month to restore")

// Restore puts a ledger's archived month back into the database from its
// files, for an audit: the rows are loaded into staging tables, checked
// against the files (the same counts, sequence range and sums as
// archival) and only then moved into the month's partitions, in one
// transaction. The month stays restored until `ledgerd archive --month`
// archives it again (its files are kept; that run checks the rows
// against them instead of writing new ones).
func (a *Archiver) Restore(ctx context.Context, ledger string, month time.Time) (*Manifest, error) {
	month = postgres.Month(month)
	l, err := a.DB.LedgerByName(ctx, ledger)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("no ledger %q", ledger)
	}
	row, err := a.DB.ArchiveOf(ctx, l.ID, month)
	if err != nil {
		return nil, err
	}
	if row == nil || row.State != postgres.ArchiveDropped {
		state := "never archived"
		if row != nil {
			state = string(row.State)
		}
		return nil, fmt.Errorf("%w: ledger %s %s is %s", ErrNotArchived, ledger, month.Format("2006-01"), state)
	}
	// The manifest kept in the database when the set was verified is the
	// reference: a manifest.json changed in the bucket since is not.
	m, err := parseManifest(row.Manifest)
	if err != nil {
		return nil, err
	}
	ctx, done, err := a.hold(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := a.DB.CreateStage(ctx, l.ID, month); err != nil {
		return nil, err
	}
	stx, sen := postgres.StageTables(l.ID, month)
	if err := readParquet(ctx, a.Bucket, m.Files[TransactionsFile], func(txs []postgres.ArchivedTx) error {
		return a.DB.StageTransactions(ctx, stx, l.ID, txs)
	}); err != nil {
		return nil, fmt.Errorf("restore ledger %s %s: %w", ledger, month.Format("2006-01"), err)
	}
	if err := readParquet(ctx, a.Bucket, m.Files[EntriesFile], func(es []postgres.ArchivedEntry) error {
		return a.DB.StageEntries(ctx, sen, l.ID, es)
	}); err != nil {
		return nil, fmt.Errorf("restore ledger %s %s: %w", ledger, month.Format("2006-01"), err)
	}
	if err := verifySet(ctx, a.Bucket, a.DB, stx, sen, m); err != nil {
		_ = a.DB.DropStage(ctx, l.ID, month)
		return nil, fmt.Errorf("restore ledger %s %s: %w", ledger, month.Format("2006-01"), err)
	}
	if err := a.DB.AttachStage(ctx, l.ID, month); err != nil {
		return nil, err
	}
	a.log().Info("archive: restored", "ledger", ledger, "month", month.Format("2006-01"))
	return m, nil
}
