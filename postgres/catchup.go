package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// catchUpChunk is how many accounts one catch-up transaction covers: it
// holds the ledger's ordering lock, so writes to the ledger wait for it;
// a few hundred rows keep that wait to milliseconds.
const catchUpChunk = 500

// catchUpSQL writes the checkpoint of the next chunk of a ledger's
// accounts (ids after $2) whose newest entry is newer than their row,
// and returns the chunk's last id (empty past the end) and the rows written.
// The version guard is the batch writer's (CheckpointAccountsSQL): a row
// only ever moves forward.
const catchUpSQL = `WITH ids AS (
		SELECT id FROM accounts WHERE ledger_id = $1 AND id > $2 ORDER BY id LIMIT $3),
	head AS (
		SELECT ids.id, e.posted_after, e.pending_debits_after, e.pending_credits_after, e.version
		FROM ids CROSS JOIN LATERAL (
			SELECT x.posted_after, coalesce(x.pending_debits_after, 0) AS pending_debits_after,
				coalesce(x.pending_credits_after, 0) AS pending_credits_after, x.version
			FROM entries x WHERE x.ledger_id = $1 AND x.account_id = ids.id
			ORDER BY x.sequence DESC, x.posting_index DESC LIMIT 1) e),
	upd AS (
		UPDATE accounts a SET posted = h.posted_after, pending_debits = h.pending_debits_after,
			pending_credits = h.pending_credits_after, version = h.version
		FROM head h WHERE a.ledger_id = $1 AND a.id = h.id AND a.version < h.version
		RETURNING 1)
	SELECT coalesce((SELECT max(id) FROM ids), ''), (SELECT count(*) FROM upd)`

// CatchUpCheckpoints brings every account row of the ledger up to its
// newest entry, and returns how many rows it wrote. The batch writer
// checkpoints only the rows it has moved and still remembers
// (checkpoint.go); a row left behind by a writer that crashed or dropped
// its cache stays behind until a batch next reads the account. That is
// fine while the account's entries are online, and not once a month of
// them leaves: before the archiver detaches a month, every row must be
// checkpointed past it.
//
// Each chunk runs under the ledger's ordering lock, the lock every writer
// of account rows holds, so a checkpoint never interleaves with a commit.
func (db *DB) CatchUpCheckpoints(ctx context.Context, ledgerID int64) (int64, error) {
	var total int64
	after := ""
	for {
		var last string
		var n int64
		err := db.beginFunc(ctx, func(tx pgx.Tx) error {
			var seq int64
			if err := tx.QueryRow(ctx, `SELECT last_sequence FROM ledgers WHERE id = $1 FOR UPDATE`, ledgerID).Scan(&seq); err != nil {
				return err
			}
			return tx.QueryRow(ctx, catchUpSQL, ledgerID, after, catchUpChunk).Scan(&last, &n)
		})
		if err != nil {
			return total, fmt.Errorf("catch-up checkpoint of ledger %d: %w", ledgerID, err)
		}
		total += n
		if last == "" {
			return total, nil
		}
		after = last
	}
}

// StaleCheckpoints counts the entries of the table (a month's entries
// partition) newer than their account's row: what reads would lose if the
// table left. The archiver requires 0.
func (db *DB) StaleCheckpoints(ctx context.Context, entriesTable string) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{entriesTable}.Sanitize()+` e
		JOIN accounts a ON a.ledger_id = e.ledger_id AND a.id = e.account_id WHERE e.version > a.version`).Scan(&n)
	return n, err
}
