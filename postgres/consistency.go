package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// A write's Consistency-Token is a WAL position at or after its commit
// record: a replica that has replayed up to it shows the write. Reading
// pg_current_wal_lsn() in the pipeline right after COMMIT costs no round
// trip (the answer travels with COMMIT's), and the primary flushed the
// commit record before answering COMMIT, so the position read is past it.
// The node keeps the newest position it has seen: a write's answer, sent
// after its batch's pipeline returned, carries a position at least as new
// as its own commit (newer only makes a read wait for more).

// lsnSQL reads the primary's WAL write position as a number.
const lsnSQL = `SELECT (pg_current_wal_lsn() - '0/0')::bigint`

// replayLSNSQL reads how far a replica has replayed. A server not in
// recovery (the primary itself named as a replica) is as new as its own
// WAL: reads there are as fresh as the primary's.
const replayLSNSQL = `SELECT coalesce((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
	ELSE pg_current_wal_lsn() END - '0/0')::bigint, -1)`

// queueCommitLSN queues, after COMMIT, the read of the commit's position.
func (db *DB) queueCommitLSN(b *pgx.Batch) {
	b.Queue(lsnSQL).QueryRow(func(r pgx.Row) error {
		var lsn int64
		if err := r.Scan(&lsn); err != nil {
			return err
		}
		db.notePosition(uint64(lsn))
		return nil
	})
}

// notePosition raises the newest known position to lsn.
func (db *DB) notePosition(lsn uint64) {
	for {
		cur := db.lastLSN.Load()
		if lsn <= cur || db.lastLSN.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

// CommitPosition is the newest commit position this node has seen: the
// Consistency-Token of a write answered now.
func (db *DB) CommitPosition() ledgerd.Position { return ledgerd.Position(db.lastLSN.Load()) }

// readPosition reads the primary's position after a write outside the
// batch writer (accounts, ledgers, keys): one round trip, on writes that
// are not the transfer path.
func (db *DB) readPosition(ctx context.Context) error {
	var lsn int64
	if err := db.queryRow(ctx, lsnSQL).Scan(&lsn); err != nil {
		return err
	}
	db.notePosition(uint64(lsn))
	return nil
}
