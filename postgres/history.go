package postgres

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// Balance history and statements read the running balance stored on each
// entry at commit (posted_after, version) instead of summing history: the
// answer for any instant is the last entry at or before it, two index
// probes whatever the account's age.

// SequenceAtOrBeforeSQL is the last sequence created at or before t, 0 if none.
const SequenceAtOrBeforeSQL = `SELECT coalesce((SELECT last_sequence FROM ledger_commits WHERE ledger_id = $1 AND created_at <= $2
	ORDER BY created_at DESC, last_sequence DESC LIMIT 1), 0)`

// FirstSequenceFromSQL is the first sequence created at or after t, or
// MaxInt64 when there is none yet.
const FirstSequenceFromSQL = `SELECT coalesce((SELECT first_sequence FROM ledger_commits WHERE ledger_id = $1 AND created_at >= $2
	ORDER BY created_at, last_sequence LIMIT 1), 9223372036854775807)`

// BalanceBeforeSQL is the account's posted balance and version after the
// last entry with a sequence below $3, and that entry's sequence.
const BalanceBeforeSQL = `SELECT posted_after, version, sequence FROM entries WHERE ledger_id = $1 AND account_id = $2 AND sequence < $3
	ORDER BY sequence DESC, posting_index DESC LIMIT 1`

// StatementLinesSQL is a page of an account's statement: its posted
// entries after the cursor ($3, $4) and before sequence $5.
const StatementLinesSQL = `SELECT transaction_id, sequence, posting_index, amount, posted_after, created_at
		FROM entries WHERE ledger_id = $1 AND account_id = $2 AND NOT pending
			AND (sequence, posting_index) > ($3, $4) AND sequence < $5
		ORDER BY sequence, posting_index LIMIT $6`

// BalanceAt returns the account's posted balance and version as of t
// (inclusive): 0, 0 before its first entry.
func (db *DB) BalanceAt(ctx context.Context, ledgerID int64, account string, t time.Time) (posted, version int64, err error) {
	var seq int64
	if err := db.queryRow(ctx, SequenceAtOrBeforeSQL, ledgerID, t).Scan(&seq); err != nil {
		return 0, 0, err
	}
	// ledger_commits keeps no rows of a dropped month (retainarchived.go):
	// a month's transactions all have created_at in the month (their ids
	// are taken at that time), so a month wholly before t ends the
	// sequence at its last one, and within the month t falls in the
	// account's own entries, with their times, give the answer.
	arcs, err := db.offlineArchives(ctx, ledgerID)
	if err != nil {
		return 0, 0, err
	}
	for _, a := range arcs {
		switch {
		case !a.Month.AddDate(0, 1, 0).After(t):
			seq = max(seq, a.LastSeq)
		case !a.Month.After(t):
			es, err := db.archivedEntries(ctx, a, account)
			if err != nil {
				return 0, 0, err
			}
			for i := len(es) - 1; i >= 0; i-- {
				if !es[i].CreatedAt.After(t) {
					return es[i].PostedAfter, es[i].Version, nil
				}
			}
			seq = max(seq, a.FirstSeq-1)
		}
	}
	if seq == 0 {
		return 0, 0, nil
	}
	return db.balanceBefore(ctx, ledgerID, account, seq+1, arcs)
}

// balanceBefore is the account's posted balance and version after its last
// entry below seq: online, or in an archived month when that one is newer
// (archiveread.go); arcs are the ledger's offlineArchives.
func (db *DB) balanceBefore(ctx context.Context, ledgerID int64, account string, seq int64, arcs []Archive) (posted, version int64, err error) {
	var found int64
	err = db.queryRow(ctx, BalanceBeforeSQL, ledgerID, account, seq).Scan(&posted, &version, &found)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if err != nil {
		return 0, 0, err
	}
	p, v, ok, err := db.archivedBalanceBefore(ctx, arcs, account, seq, found)
	if err != nil || ok {
		return p, v, err
	}
	return posted, version, nil
}

// Statement returns lines of the account in [From, To), oldest first. The
// opening and closing balances cover the whole range, so every page of one
// range carries the same ones.
func (db *DB) Statement(ctx context.Context, ledgerID int64, account string, f ledgerd.StatementFilter) (*ledgerd.Statement, error) {
	st := &ledgerd.Statement{RangeStart: 1, RangeEndBefore: math.MaxInt64}
	// Most ledgers have no archived month: one index probe, read once
	// for the whole statement.
	arcs, err := db.offlineArchives(ctx, ledgerID)
	if err != nil {
		return nil, err
	}
	if f.From != nil {
		if st.RangeStart, err = db.accountSequenceFrom(ctx, ledgerID, account, *f.From, arcs); err != nil {
			return nil, err
		}
	}
	if f.To != nil {
		if st.RangeEndBefore, err = db.accountSequenceFrom(ctx, ledgerID, account, *f.To, arcs); err != nil {
			return nil, err
		}
	}
	if st.RangeEndBefore < st.RangeStart {
		st.RangeEndBefore = st.RangeStart
	}
	if st.Opening, _, err = db.balanceBefore(ctx, ledgerID, account, st.RangeStart, arcs); err != nil {
		return nil, err
	}
	if st.Closing, _, err = db.balanceBefore(ctx, ledgerID, account, st.RangeEndBefore, arcs); err != nil {
		return nil, err
	}
	lo, loIdx := st.RangeStart-1, math.MaxInt16
	if f.AfterSeq > lo || (f.AfterSeq == lo && f.AfterIndex > loIdx) {
		lo, loIdx = f.AfterSeq, f.AfterIndex
	}
	rows, err := db.query(ctx, StatementLinesSQL, ledgerID, account, lo, loIdx, st.RangeEndBefore, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e ledgerd.StatementLine
		var id pgtype.UUID
		var idx int16
		if err := rows.Scan(&id, &e.Sequence, &idx, &e.Amount, &e.BalanceAfter, &e.CreatedAt); err != nil {
			return nil, err
		}
		e.TransactionID, e.PostingIndex = uuidString(id), int(idx)
		st.Lines = append(st.Lines, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Lines of archived months in the range come from their files, merged
	// in sequence order with the online ones.
	arc, err := db.archivedLines(ctx, arcs, account, lo, loIdx, st.RangeEndBefore)
	if err != nil || len(arc) == 0 {
		return st, err
	}
	st.Lines = append(arc, st.Lines...)
	slices.SortStableFunc(st.Lines, func(x, y ledgerd.StatementLine) int {
		if x.Sequence != y.Sequence {
			return cmp.Compare(x.Sequence, y.Sequence)
		}
		return cmp.Compare(x.PostingIndex, y.PostingIndex)
	})
	if len(st.Lines) > f.Limit {
		st.Lines = st.Lines[:f.Limit]
	}
	return st, nil
}

// accountSequenceFrom is, for reads of one account's entries, a sequence
// that splits them at t as the ledger's first sequence at or after t
// does. The archived months arcs (offlineArchives) stand for their
// deleted ledger_commits rows: one after t starts at its first sequence
// at the latest, and within the one t falls in the account's first
// entry there at or after t (or the month's end), read from its files,
// splits the account's entries alike.
func (db *DB) accountSequenceFrom(ctx context.Context, ledgerID int64, account string, t time.Time, arcs []Archive) (int64, error) {
	var seq int64
	if err := db.queryRow(ctx, FirstSequenceFromSQL, ledgerID, t).Scan(&seq); err != nil {
		return 0, err
	}
	for _, a := range arcs {
		if a.FirstSeq == 0 || !a.Month.AddDate(0, 1, 0).After(t) {
			continue
		}
		if !a.Month.Before(t) {
			seq = min(seq, a.FirstSeq)
			continue
		}
		es, err := db.archivedEntries(ctx, a, account)
		if err != nil {
			return 0, err
		}
		for _, e := range es {
			if !e.CreatedAt.Before(t) {
				return e.Sequence, nil
			}
		}
		return a.LastSeq + 1, nil
	}
	return seq, nil
}
