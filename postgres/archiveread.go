package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// Reads that reach into archived months (docs/data-lifecycle.md). Balance
// history and statements read the running balances stored on entries; for
// a month whose entries have left, those entries are read from its files
// instead: slower (the month's entries file is read), but the same answer.

// ArchiveReader reads archived months; package archive implements it over
// the bucket.
type ArchiveReader interface {
	// AccountEntries returns an account's entries of a ledger's archived
	// month, in (sequence, posting_index) order.
	AccountEntries(ctx context.Context, a Archive, account string) ([]ArchivedEntry, error)
}

// offlineArchives lists a ledger's months whose rows are not online
// (every state but restored), newest first. Most ledgers have none: one
// index probe.
func (db *DB) offlineArchives(ctx context.Context, ledgerID int64) ([]Archive, error) {
	rows, err := db.query(ctx, `SELECT `+archiveCols+` FROM archives WHERE ledger_id = $1 AND state <> 'restored' ORDER BY month DESC`, ledgerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanArchive)
}

// archivedEntries reads an account's entries of an archived month. A month
// still on its way out (not yet verified) cannot be read from either side
// for a moment: the request is answered as unavailable, to be retried.
func (db *DB) archivedEntries(ctx context.Context, a Archive, account string) ([]ArchivedEntry, error) {
	if a.State != ArchiveVerified && a.State != ArchiveDropped {
		return nil, fmt.Errorf("%w: %s is being archived", ErrUnavailable, a.Month.Format("2006-01"))
	}
	if db.Archive == nil {
		return nil, fmt.Errorf("%w: %s is archived and this node has no archive bucket (LEDGERD_BLOB_URL)", ErrUnavailable, a.Month.Format("2006-01"))
	}
	return db.Archive.AccountEntries(ctx, a, account)
}

// archivedBalanceBefore looks in the archived months arcs for the account's last
// entry below seq that is newer than the online one (at sequence found, 0
// when none); ok is false when there is none.
func (db *DB) archivedBalanceBefore(ctx context.Context, arcs []Archive, account string, seq, found int64) (posted, version int64, ok bool, err error) {
	for _, a := range arcs {
		// Only a month with sequences between the online answer and seq
		// can hold a newer one.
		if a.FirstSeq >= seq || (a.LastSeq != 0 && a.LastSeq <= found) {
			continue
		}
		es, err := db.archivedEntries(ctx, a, account)
		if err != nil {
			return 0, 0, false, err
		}
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].Sequence < seq {
				if es[i].Sequence <= found {
					break
				}
				return es[i].PostedAfter, es[i].Version, true, nil
			}
		}
	}
	return 0, 0, false, nil
}

// archivedLines returns the account's statement lines in archived months
// after (lo, loIdx) and below hi, unordered (Statement merges them).
func (db *DB) archivedLines(ctx context.Context, arcs []Archive, account string, lo int64, loIdx int, hi int64) ([]ledgerd.StatementLine, error) {
	var out []ledgerd.StatementLine
	for _, a := range slices.Backward(arcs) {
		if a.LastSeq <= lo || a.FirstSeq >= hi {
			continue
		}
		es, err := db.archivedEntries(ctx, a, account)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Pending || e.Sequence >= hi || e.Sequence < lo || (e.Sequence == lo && int(e.PostingIndex) <= loIdx) {
				continue
			}
			out = append(out, ledgerd.StatementLine{TransactionID: e.TransactionID, Sequence: e.Sequence, PostingIndex: int(e.PostingIndex),
				Amount: e.Amount, BalanceAfter: e.PostedAfter, CreatedAt: e.CreatedAt})
		}
	}
	return out, nil
}

// idMonth is the month a transaction id falls in (its first 48 bits are
// its creation time in milliseconds).
func idMonth(u pgtype.UUID) time.Time {
	var ms int64
	for i := 0; i < 6; i++ {
		ms = ms<<8 | int64(u.Bytes[i])
	}
	return Month(time.UnixMilli(ms))
}

// archivedTransaction explains a transaction that is not online: gone
// with its archived month (410 archived, naming the archive), or nil when
// its month is online or was never archived.
func (db *DB) archivedTransaction(ctx context.Context, ledgerID int64, id pgtype.UUID) error {
	month := idMonth(id)
	a, err := db.ArchiveOf(ctx, ledgerID, month)
	if err != nil || a == nil || a.State == ArchiveRestored {
		return err
	}
	if a.State != ArchiveVerified && a.State != ArchiveDropped {
		// Detached, its files not yet checked: back in a moment.
		return fmt.Errorf("%w: %s is being archived", ErrUnavailable, month.Format("2006-01"))
	}
	var name string
	if err := db.queryRow(ctx, `SELECT name FROM ledgers WHERE id = $1`, ledgerID).Scan(&name); err != nil {
		return err
	}
	m := month.Format("2006-01")
	return ledgerd.Errorf(ledgerd.CodeArchived,
		"transaction %s is in the archive of ledger %s for %s (ledgers/%s/%s/transactions.parquet); `ledgerd restore --ledger %s --month %s` puts it back",
		uuidString(id), name, m, name, m, name, m)
}
