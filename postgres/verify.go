package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/audit"
)

// Verify recomputes, for one ledger (or every ledger when name is ""),
// its audit hash chain and every account's balances and version from its
// entries (docs/audit.md §Verification). It returns nil when everything
// matches, and otherwise a *Mismatch naming the first entry or account
// that does not match and why. Everything is read in one REPEATABLE READ
// snapshot, so that writes going on meanwhile do not look like tampering.
func (db *DB) Verify(ctx context.Context, name string) (checked int, err error) {
	conn, err := db.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT id, name FROM ledgers WHERE $1 = '' OR name = $1 ORDER BY name`, name)
	if err != nil {
		return 0, err
	}
	type ledger struct {
		id   int64
		name string
	}
	ledgers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger, error) {
		var l ledger
		return l, r.Scan(&l.id, &l.name)
	})
	if err != nil {
		return 0, err
	}
	if name != "" && len(ledgers) == 0 {
		return 0, fmt.Errorf("no ledger %q", name)
	}
	for _, l := range ledgers {
		if err := verifyChain(ctx, tx, l.id, l.name); err != nil {
			return checked, err
		}
		if err := verifyEntries(ctx, tx, l.id, l.name); err != nil {
			return checked, err
		}
		if err := verifyAccounts(ctx, tx, l.id, l.name); err != nil {
			return checked, err
		}
		checked++
	}
	return checked, nil
}

// Mismatch is the first thing Verify found that does not match.
type Mismatch struct {
	Ledger string
	// What names the entry or account; Why says what differs.
	What, Why string
}

func (m *Mismatch) Error() string { return fmt.Sprintf("ledger %s: %s: %s", m.Ledger, m.What, m.Why) }

// verifyChain walks the ledger's audit entries in position order: every
// chained entry's prev_hash is the previous entry's hash and its hash is
// recomputed from its contents; once an entry is unchained, every later
// one is too.
func verifyChain(ctx context.Context, tx pgx.Tx, ledgerID int64, name string) error {
	prev, after, unchained := audit.ZeroHash, int64(0), ""
	// Retention deleted the entries up to the checkpoint: the chain
	// starts from the last one deleted (docs/audit.md §Retention).
	err := tx.QueryRow(ctx, `SELECT position, hash FROM audit_checkpoints WHERE ledger_id = $1`, ledgerID).Scan(&after, &prev)
	if err != nil && err != pgx.ErrNoRows {
		return err
	}
	for {
		rows, err := tx.Query(ctx, `SELECT `+auditCols+`
			FROM audit_log WHERE ledger_id = $1 AND position > $2 ORDER BY position LIMIT 10000`, ledgerID, after)
		if err != nil {
			return err
		}
		entries, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if err := attachHashes(ctx, tx.Query, ledgerID, entries); err != nil {
			return err
		}
		for _, e := range entries {
			id := "audit entry " + audit.ID(e.Position)
			switch {
			case e.Hash == "" && e.PrevHash == "":
				if unchained == "" {
					unchained = id
				}
				continue
			case unchained != "":
				return &Mismatch{name, id, "chained after the unchained " + unchained}
			case e.PrevHash != prev:
				return &Mismatch{name, id, fmt.Sprintf("prev_hash %s is not the previous entry's hash %s (an entry before it was removed or changed)", e.PrevHash, prev)}
			}
			if h := audit.Hash(prev, e); h != e.Hash {
				return &Mismatch{name, id, fmt.Sprintf("hash %s does not match its contents (recomputed %s)", e.Hash, h)}
			}
			prev = e.Hash
		}
		if len(entries) < 10000 {
			break
		}
		after = entries[len(entries)-1].Position
	}
	var head int64
	var hash string
	err = tx.QueryRow(ctx, `SELECT position, hash FROM audit_chains WHERE ledger_id = $1`, ledgerID).Scan(&head, &hash)
	if err == nil && hash != prev {
		return &Mismatch{name, "audit chain head", fmt.Sprintf("hash %s at %s, but the chain recomputes to %s", hash, audit.ID(head), prev)}
	}
	if err == pgx.ErrNoRows {
		err = nil
	}
	return err
}

// verifyEntries checks every entry's running values against the entries
// before it: posted_after is the previous one plus its amount (pending
// legs move no posted balance), and version counts the account's
// transactions. Where earlier entries were archived, the count starts
// from the account's balance after its last archived entry
// (archived_balances); the archived entries themselves were checked
// against their files when they left (docs/data-lifecycle.md).
const verifyEntriesSQL = `SELECT account_id, transaction_id::text, posting_index, amount, posted_after, version, expected_posted, expected_version FROM (
	SELECT e.*, coalesce(b.posted_after, 0) + coalesce(sum(CASE WHEN e.pending THEN 0 ELSE e.amount END) OVER w, 0) AS expected_posted,
		coalesce(b.version, 0) + dense_rank() OVER (PARTITION BY e.account_id ORDER BY e.sequence) AS expected_version
	FROM entries e LEFT JOIN archived_balances b ON b.ledger_id = e.ledger_id AND b.account_id = e.account_id
	WHERE e.ledger_id = $1 AND e.sequence > coalesce(b.through_sequence, 0)
	WINDOW w AS (PARTITION BY e.account_id ORDER BY e.sequence, e.posting_index)
) x WHERE posted_after <> expected_posted OR version <> expected_version
ORDER BY sequence, posting_index, account_id LIMIT 1`

func verifyEntries(ctx context.Context, tx pgx.Tx, ledgerID int64, name string) error {
	var account, txID string
	var idx int
	var amount, posted, version, wantPosted, wantVersion int64
	err := tx.QueryRow(ctx, verifyEntriesSQL, ledgerID).Scan(&account, &txID, &idx, &amount, &posted, &version, &wantPosted, &wantVersion)
	if err == pgx.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("entry of account %s in transaction %s (posting %d, amount %d)", account, txID, idx, amount)
	if posted != wantPosted {
		return &Mismatch{name, what, fmt.Sprintf("posted_after %d, but the entries up to it sum to %d", posted, wantPosted)}
	}
	return &Mismatch{name, what, fmt.Sprintf("version %d, but it is the account's transaction number %d", version, wantVersion)}
}

// verifyAccountsSQL recomputes every account's balance: posted and version
// from its entries, pending totals from the open holds; and reads what the
// API reports (the newer of row and newest entry) and the row's own
// checkpoint with the entry it claims to be at.
var verifyAccountsSQL = `WITH sums AS (
	SELECT ids.account_id, coalesce(max(b.posted_after), 0) + coalesce(sum(e.amount) FILTER (WHERE NOT e.pending), 0) AS posted,
		coalesce(max(b.version), 0) + count(DISTINCT e.sequence) FILTER (WHERE e.sequence IS NOT NULL) AS version
	FROM (SELECT account_id FROM entries WHERE ledger_id = $1 UNION SELECT account_id FROM archived_balances WHERE ledger_id = $1) ids
	LEFT JOIN archived_balances b ON b.ledger_id = $1 AND b.account_id = ids.account_id
	LEFT JOIN entries e ON e.ledger_id = $1 AND e.account_id = ids.account_id AND e.sequence > coalesce(b.through_sequence, 0)
	GROUP BY 1
), h AS (
	SELECT p->>'source' AS src, p->>'destination' AS dst, (p->>'amount')::bigint AS amount
	FROM transactions t, json_array_elements(t.postings) p WHERE t.ledger_id = $1 AND t.status = 'pending'
)
SELECT a.id, ` + headBalanceCols + `, a.posted, a.version,
	coalesce(sums.posted, 0), coalesce(sums.version, 0),
	coalesce((SELECT sum(h.amount) FROM h WHERE h.src = a.id), 0)::bigint,
	coalesce((SELECT sum(h.amount) FROM h WHERE h.dst = a.id), 0)::bigint,
	coalesce((SELECT c.posted_after FROM entries c WHERE c.ledger_id = a.ledger_id AND c.account_id = a.id AND c.version = a.version
		ORDER BY c.sequence DESC, c.posting_index DESC LIMIT 1),
		(SELECT b.posted_after FROM archived_balances b WHERE b.ledger_id = a.ledger_id AND b.account_id = a.id AND b.version = a.version), 0)
FROM ` + accountHead(`accounts a`) + ` LEFT JOIN sums ON sums.account_id = a.id
WHERE a.ledger_id = $1 ORDER BY a.id`

func verifyAccounts(ctx context.Context, tx pgx.Tx, ledgerID int64, name string) error {
	rows, err := tx.Query(ctx, verifyAccountsSQL, ledgerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var got, want ledgerd.Balance
		var gotVersion, rowPosted, rowVersion, wantVersion, rowWant int64
		if err := rows.Scan(&id, &got.Posted, &got.PendingDebits, &got.PendingCredits, &gotVersion, &rowPosted, &rowVersion,
			&want.Posted, &wantVersion, &want.PendingDebits, &want.PendingCredits, &rowWant); err != nil {
			return err
		}
		what := "account " + id
		switch {
		case got != want:
			return &Mismatch{name, what, fmt.Sprintf("balance posted %d, pending_debits %d, pending_credits %d; its entries and open holds give %d, %d, %d",
				got.Posted, got.PendingDebits, got.PendingCredits, want.Posted, want.PendingDebits, want.PendingCredits)}
		case gotVersion != wantVersion:
			return &Mismatch{name, what, fmt.Sprintf("version %d; its entries give %d", gotVersion, wantVersion)}
		case rowVersion > wantVersion:
			return &Mismatch{name, what, fmt.Sprintf("row version %d is past its entries' %d", rowVersion, wantVersion)}
		case rowPosted != rowWant:
			return &Mismatch{name, what, fmt.Sprintf("row posted %d at version %d; its entries give %d there", rowPosted, rowVersion, rowWant)}
		}
	}
	return rows.Err()
}
