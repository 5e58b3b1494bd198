package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// The database side of archival (package archive drives it; see
// docs/data-lifecycle.md). Partitions are monthly and shared by every
// ledger, so a month leaves as a whole: the archiver detaches its two
// partitions, writes one file set per ledger from the detached tables,
// verifies each against its table, and drops the tables only when every
// ledger's set is verified.

// Month is the first instant (UTC) of the month holding t.
func Month(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// MonthTables are the names of a month's partitions of transactions and
// entries (EnsurePartitions names them so).
func MonthTables(month time.Time) (transactions, entries string) {
	return fmt.Sprintf("transactions_%04d_%02d", month.Year(), month.Month()),
		fmt.Sprintf("entries_%04d_%02d", month.Year(), month.Month())
}

// PartitionState is where a month's partition table stands.
type PartitionState int

const (
	PartitionAbsent        PartitionState = iota // no such table
	PartitionAttached                            // a partition of its parent
	PartitionDetachPending                       // DETACH … CONCURRENTLY was interrupted
	PartitionDetached                            // a table of its own
)

func (s PartitionState) String() string {
	return [...]string{"absent", "attached", "detach pending", "detached"}[s]
}

// Partition returns the state of a partition table by name.
func (db *DB) Partition(ctx context.Context, table string) (PartitionState, error) {
	var exists bool
	var pending *bool
	err := db.queryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
		(SELECT i.inhdetachpending FROM pg_inherits i WHERE i.inhrelid = to_regclass($1))`, table).Scan(&exists, &pending)
	switch {
	case err != nil:
		return 0, err
	case !exists:
		return PartitionAbsent, nil
	case pending == nil:
		return PartitionDetached, nil
	case *pending:
		return PartitionDetachPending, nil
	}
	return PartitionAttached, nil
}

// MonthPartitions lists the months that have a partition table of
// transactions or entries, attached or not, oldest first.
func (db *DB) MonthPartitions(ctx context.Context) ([]time.Time, error) {
	rows, err := db.query(ctx, `SELECT DISTINCT substring(relname FROM '[0-9]{4}_[0-9]{2}$') AS m FROM pg_class
		WHERE relkind IN ('r', 'p') AND relname ~ '^(transactions|entries)_[0-9]{4}_[0-9]{2}$'
			AND relnamespace = current_schema()::regnamespace ORDER BY m`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, n := range names {
		if m, err := time.Parse("2006_01", n); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// UnfinishedArchiveMonths lists the months some ledger's archival has
// started and not finished (detaching, written or verified), oldest first.
func (db *DB) UnfinishedArchiveMonths(ctx context.Context) ([]time.Time, error) {
	rows, err := db.query(ctx, `SELECT DISTINCT month FROM archives WHERE state IN ('detaching', 'written', 'verified') ORDER BY month`)
	if err != nil {
		return nil, err
	}
	ds, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.Date])
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, len(ds))
	for i, d := range ds {
		out[i] = d.Time
	}
	return out, nil
}

// ArchiveLedgers lists the ledgers with a row for the month in the
// archives table, with their state.
func (db *DB) ArchiveLedgers(ctx context.Context, month time.Time) ([]MonthLedger, []ArchiveState, error) {
	rows, err := db.query(ctx, `SELECT l.id, l.name, l.hot_months, a.state FROM archives a JOIN ledgers l ON l.id = a.ledger_id
		WHERE a.month = $1 ORDER BY l.id`, Month(month))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ls []MonthLedger
	var st []ArchiveState
	for rows.Next() {
		var m MonthLedger
		var s ArchiveState
		if err := rows.Scan(&m.ID, &m.Name, &m.HotMonths, &s); err != nil {
			return nil, nil, err
		}
		ls, st = append(ls, m), append(st, s)
	}
	return ls, st, rows.Err()
}

// DetachPartition detaches a partition without blocking reads and writes
// of its parent (DETACH … CONCURRENTLY), or completes a detach that was
// interrupted (FINALIZE). A detached or absent table is left as it is.
func (db *DB) DetachPartition(ctx context.Context, parent, table string) error {
	st, err := db.Partition(ctx, table)
	if err != nil {
		return err
	}
	p, t := pgx.Identifier{parent}.Sanitize(), pgx.Identifier{table}.Sanitize()
	switch st {
	case PartitionAttached:
		_, err = db.exec(ctx, `ALTER TABLE `+p+` DETACH PARTITION `+t+` CONCURRENTLY`)
	case PartitionDetachPending:
		_, err = db.exec(ctx, `ALTER TABLE `+p+` DETACH PARTITION `+t+` FINALIZE`)
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", table, err)
	}
	return nil
}

// DropDetached drops a table that is no longer a partition. It refuses an
// attached one: only a detached month, whose archive is verified, may go.
func (db *DB) DropDetached(ctx context.Context, table string) error {
	st, err := db.Partition(ctx, table)
	if err != nil {
		return err
	}
	switch st {
	case PartitionAbsent:
		return nil
	case PartitionDetached:
		_, err = db.exec(ctx, `DROP TABLE `+pgx.Identifier{table}.Sanitize())
		return err
	}
	return fmt.Errorf("drop %s: it is %s", table, st)
}

// CreateMonthPartitions creates the month's partitions of transactions and
// entries when they do not exist: for a restore, and for tests that write
// into past months.
func (db *DB) CreateMonthPartitions(ctx context.Context, month time.Time) error {
	month = Month(month)
	for _, table := range partitioned {
		name := fmt.Sprintf("%s_%04d_%02d", table, month.Year(), month.Month())
		_, err := db.exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
			name, table, monthBound(month), monthBound(month.AddDate(0, 1, 0))))
		if err != nil && pgCode(err) != "42P07" {
			return fmt.Errorf("create partition %s: %w", name, err)
		}
	}
	return nil
}

// MonthLedger is a ledger with rows in a month's table.
type MonthLedger struct {
	ID        int64
	Name      string
	HotMonths int
	// FirstSeq and LastSeq are its sequence range in the month.
	FirstSeq, LastSeq int64
}

// MonthLedgers lists the ledgers with transactions in a month's table,
// with index probes only (one per ledger): it runs for every month at
// every archival run, most of them months that stay.
func (db *DB) MonthLedgers(ctx context.Context, txTable string) ([]MonthLedger, error) {
	t := pgx.Identifier{txTable}.Sanitize()
	rows, err := db.query(ctx, `SELECT l.id, l.name, l.hot_months,
			(SELECT min(sequence) FROM `+t+` WHERE ledger_id = l.id), (SELECT max(sequence) FROM `+t+` WHERE ledger_id = l.id)
		FROM ledgers l WHERE EXISTS (SELECT 1 FROM `+t+` x WHERE x.ledger_id = l.id) ORDER BY l.id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MonthLedger, error) {
		var m MonthLedger
		err := r.Scan(&m.ID, &m.Name, &m.HotMonths, &m.FirstSeq, &m.LastSeq)
		return m, err
	})
}

// PendingHolds counts a ledger's holds still pending in a month's table:
// a capture or void would update them, so the month cannot leave while
// there are any. It reads the ledger's rows of the month: run only for a
// month the policy lets go.
func (db *DB) PendingHolds(ctx context.Context, txTable string, ledgerID int64) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{txTable}.Sanitize()+` WHERE ledger_id = $1 AND status = 'pending'`,
		ledgerID).Scan(&n)
	return n, err
}

// ArchiveState is where a ledger's month stands in archival.
type ArchiveState string

const (
	ArchiveDetaching ArchiveState = "detaching" // decided; partitions being detached
	ArchiveWritten   ArchiveState = "written"   // files written, not yet checked
	ArchiveVerified  ArchiveState = "verified"  // files read back and matched the table
	ArchiveDropped   ArchiveState = "dropped"   // the month is only in the archive
	ArchiveRestored  ArchiveState = "restored"  // re-attached from the archive
)

// Archive is one ledger's month in the archives table.
type Archive struct {
	LedgerID  int64
	Month     time.Time
	State     ArchiveState
	FirstSeq  int64 // the month's sequence range; 0 before the files are written
	LastSeq   int64
	Manifest  json.RawMessage // manifest.json of the file set, once written
	UpdatedAt time.Time
}

const archiveCols = `ledger_id, month, state, coalesce(first_sequence, 0), coalesce(last_sequence, 0), manifest, updated_at`

func scanArchive(r pgx.CollectableRow) (Archive, error) {
	var a Archive
	var m pgtype.Date
	var manifest []byte
	err := r.Scan(&a.LedgerID, &m, &a.State, &a.FirstSeq, &a.LastSeq, &manifest, &a.UpdatedAt)
	a.Month, a.Manifest = m.Time, manifest
	return a, err
}

// ArchiveOf returns a ledger's month in the archives table, or nil.
func (db *DB) ArchiveOf(ctx context.Context, ledgerID int64, month time.Time) (*Archive, error) {
	rows, err := db.query(ctx, `SELECT `+archiveCols+` FROM archives WHERE ledger_id = $1 AND month = $2`, ledgerID, Month(month))
	if err != nil {
		return nil, err
	}
	a, err := pgx.CollectOneRow(rows, scanArchive)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ArchivesOf lists a ledger's archived months (every state), oldest first.
func (db *DB) ArchivesOf(ctx context.Context, ledgerID int64) ([]Archive, error) {
	rows, err := db.query(ctx, `SELECT `+archiveCols+` FROM archives WHERE ledger_id = $1 ORDER BY month`, ledgerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanArchive)
}

// SetArchive records a ledger's month in a state; the sequence range and
// manifest are kept when not given (zero, nil).
func (db *DB) SetArchive(ctx context.Context, a Archive) error {
	var first, last *int64
	if a.FirstSeq != 0 || a.LastSeq != 0 {
		first, last = &a.FirstSeq, &a.LastSeq
	}
	var manifest *string
	if a.Manifest != nil {
		s := string(a.Manifest)
		manifest = &s
	}
	_, err := db.exec(ctx, `INSERT INTO archives (ledger_id, month, state, first_sequence, last_sequence, manifest)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb)
		ON CONFLICT (ledger_id, month) DO UPDATE SET state = EXCLUDED.state,
			first_sequence = coalesce(EXCLUDED.first_sequence, archives.first_sequence),
			last_sequence = coalesce(EXCLUDED.last_sequence, archives.last_sequence),
			manifest = coalesce(EXCLUDED.manifest, archives.manifest), updated_at = clock_timestamp()`,
		a.LedgerID, Month(a.Month), string(a.State), first, last, manifest)
	return err
}

// AcquireArchiveLease takes (or renews, for the same holder) the archiver's
// lease until ttl from now; false when another holder's lease runs.
func (db *DB) AcquireArchiveLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	tag, err := db.exec(ctx, `INSERT INTO archive_lease (id, holder, expires_at) VALUES (1, $1, clock_timestamp() + $2::interval)
		ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE archive_lease.holder = EXCLUDED.holder OR archive_lease.expires_at < clock_timestamp()`,
		holder, fmt.Sprintf("%d milliseconds", ttl.Milliseconds()))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseArchiveLease gives the lease up if holder has it.
func (db *DB) ReleaseArchiveLease(ctx context.Context, holder string) error {
	_, err := db.exec(ctx, `DELETE FROM archive_lease WHERE holder = $1`, holder)
	return err
}

// SetHotMonths sets a ledger's retention policy (1 to
// ledgerd.MaxHotMonths months) with its audit entry, and returns the
// ledger.
func (db *DB) SetHotMonths(ctx context.Context, ledgerID int64, months int) (*ledgerd.Ledger, error) {
	if months < 1 || months > ledgerd.MaxHotMonths {
		return nil, ledgerd.Invalid("hot_months", fmt.Sprintf("must be between 1 and %d", ledgerd.MaxHotMonths))
	}
	l := &ledgerd.Ledger{}
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE ledgers SET hot_months = $2 WHERE id = $1 RETURNING id, name, created_at, last_sequence, hot_months`,
			ledgerID, months).Scan(&l.ID, &l.Name, &l.CreatedAt, &l.LastSequence, &l.HotMonths)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, ledgerID, "")
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// RecordArchivedBalances keeps, for every account with entries in a
// month's table, its balance after its last entry there, unless a later
// one is kept already (months may leave out of order).
func (db *DB) RecordArchivedBalances(ctx context.Context, entriesTable string, ledgerID int64) error {
	_, err := db.exec(ctx, `INSERT INTO archived_balances (ledger_id, account_id, through_sequence, posted_after, version)
		SELECT DISTINCT ON (account_id) ledger_id, account_id, sequence, posted_after, version
		FROM `+pgx.Identifier{entriesTable}.Sanitize()+` WHERE ledger_id = $1
		ORDER BY account_id, sequence DESC, posting_index DESC
		ON CONFLICT (ledger_id, account_id) DO UPDATE SET through_sequence = EXCLUDED.through_sequence,
			posted_after = EXCLUDED.posted_after, version = EXCLUDED.version
		WHERE archived_balances.through_sequence < EXCLUDED.through_sequence`, ledgerID)
	return err
}
