package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/audit"
)

// ChainAudit links every ledger's unchained audit entries into its hash
// chain, in position order, at most limit entries per ledger, and returns
// how many it chained. Each ledger's chain head row is locked with SKIP
// LOCKED: any number of chainers may run; one works on a ledger at a time
// and the others pass it by.
func (db *DB) ChainAudit(ctx context.Context, limit int) (int, error) {
	if _, err := db.exec(ctx, `INSERT INTO audit_chains (ledger_id, position, hash)
		SELECT id, 0, $1 FROM ledgers ON CONFLICT DO NOTHING`, audit.ZeroHash); err != nil {
		return 0, err
	}
	rows, err := db.query(ctx, `SELECT c.ledger_id FROM audit_chains c WHERE EXISTS
		(SELECT 1 FROM audit_log a WHERE a.ledger_id = c.ledger_id AND a.position > c.position)`)
	if err != nil {
		return 0, err
	}
	ledgers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	total := 0
	for _, id := range ledgers {
		n, err := db.chainLedger(ctx, id, limit)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (db *DB) chainLedger(ctx context.Context, ledgerID int64, limit int) (n int, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		var head int64
		var prev string
		err := tx.QueryRow(ctx, `SELECT position, hash FROM audit_chains WHERE ledger_id = $1 FOR UPDATE SKIP LOCKED`, ledgerID).Scan(&head, &prev)
		if err == pgx.ErrNoRows {
			return nil // another chainer has it
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+auditCols+`
			FROM audit_log WHERE ledger_id = $1 AND position > $2 ORDER BY position LIMIT $3`, ledgerID, head, limit)
		if err != nil {
			return err
		}
		entries, err := scanAudit(rows)
		if err != nil || len(entries) == 0 {
			return err
		}
		// One block row for the step's hashes: the entries' rows are
		// never rewritten (migration 00019).
		pos, hashes, first := make([]int64, len(entries)), make([]string, len(entries)), prev
		for i, e := range entries {
			pos[i] = e.Position
			prev = audit.Hash(prev, e)
			hashes[i] = prev
		}
		if err := insertHashBlock(ctx, tx, ledgerID, first, pos, hashes); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE audit_chains SET position = $2, hash = $3 WHERE ledger_id = $1`, ledgerID, pos[len(pos)-1], prev)
		n = len(entries)
		return err
	})
	return n, err
}

// AuditLag is how far the chainers are behind: the unchained entries of
// every ledger and the age of the oldest of them.
func (db *DB) AuditLag(ctx context.Context) (entries int64, age time.Duration, err error) {
	entries, oldest, err := db.auditLag(ctx)
	if !oldest.IsZero() {
		age = time.Since(oldest)
	}
	return entries, age, err
}

func (db *DB) auditLag(ctx context.Context) (entries int64, oldest time.Time, err error) {
	var at *time.Time
	// Per ledger, a range of its primary key past the chain head: the
	// chained part of the log is never read.
	err = db.queryRow(ctx, `SELECT coalesce(sum(x.n), 0)::bigint, min(x.oldest) FROM ledgers l
		LEFT JOIN audit_chains c ON c.ledger_id = l.id,
		LATERAL (SELECT count(*) AS n, min(a.at) AS oldest FROM audit_log a
			WHERE a.ledger_id = l.id AND a.position > coalesce(c.position, 0)) x`).Scan(&entries, &at)
	if at != nil {
		oldest = *at
	}
	return entries, oldest, err
}
