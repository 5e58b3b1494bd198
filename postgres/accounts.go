package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// AccountByIDSQL reads one account with its balance (see accountHead).
var AccountByIDSQL = `SELECT ` + accountCols + ` FROM ` + accountHead(`accounts a`) + ` WHERE a.ledger_id = $1 AND a.id = $2`

// newAccountCols is a row just inserted: no entry can be newer.
const newAccountCols = `id, asset, min_balance, metadata, posted, pending_debits, pending_credits, version, created_at, status`

func scanAccount(row pgx.Row) (*ledgerd.Account, error) {
	a := &ledgerd.Account{}
	var md []byte
	err := row.Scan(&a.ID, &a.Asset, &a.MinBalance, &md, &a.Balance.Posted, &a.Balance.PendingDebits,
		&a.Balance.PendingCredits, &a.Version, &a.CreatedAt, &a.Status)
	if err != nil {
		return nil, err
	}
	if len(md) > 2 {
		if err := json.Unmarshal(md, &a.Metadata); err != nil {
			return nil, fmt.Errorf("account %s metadata: %w", a.ID, err)
		}
	}
	return a, nil
}

func metadataJSON(m map[string]string) string {
	return string(ledgerd.AppendMetadataJSON(nil, m))
}

// Account returns an account, or nil when there is none.
func (db *DB) Account(ctx context.Context, ledgerID int64, id string) (*ledgerd.Account, error) {
	a, err := scanAccount(db.queryRow(ctx, AccountByIDSQL, ledgerID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return a, err
}

// CreateAccount creates one account, with its account.created event. With
// a key, the outcome is stored and a retry replays it (Replayed is then
// true and the account is as it is now; no second event).
func (db *DB) CreateAccount(ctx context.Context, ledgerID int64, na *ledgerd.NewAccount, idem *ledgerd.Idempotency) (a *ledgerd.Account, replayed bool, err error) {
	conn, err := db.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Release()
	if idem == nil {
		created, err := insertAccounts(ctx, conn, ledgerID, []ledgerd.NewAccount{*na})
		if err != nil {
			return nil, false, err
		}
		if a = created[na.ID]; a == nil {
			return nil, false, ledgerd.Errorf(ledgerd.CodeDuplicateAccount, "account %s already exists", na.ID)
		}
		return a, false, nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(ctx)
	// The ledger lock before the key: the batch writer inserts keys only
	// under that lock, so a key held by a creation waiting for the lock
	// would deadlock with a writer inserting the same key (and PostgreSQL
	// would fail one of them). A duplicate creation in flight holds the
	// lock too, so waiting for the lock is waiting for it.
	if _, err := tx.Exec(ctx, lockLedgerForEventsSQL, ledgerID); err != nil {
		return nil, false, err
	}
	if a, err := db.claimAccountKey(ctx, tx, ledgerID, idem); pgCode(err) == "40P01" {
		// A PATCH claims its key before the lock, and waited for ours.
		return nil, false, inProgress()
	} else if err != nil {
		return nil, false, err
	} else if a != nil {
		return a, true, tx.Commit(ctx)
	}
	created, err := insertAccounts(ctx, tx, ledgerID, []ledgerd.NewAccount{*na})
	if err != nil {
		return nil, false, err
	}
	if a = created[na.ID]; a == nil {
		return nil, false, ledgerd.Errorf(ledgerd.CodeDuplicateAccount, "account %s already exists", na.ID)
	}
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET status = 201, account_id = $3 WHERE ledger_id = $1 AND key = $2`, ledgerID, idem.Key, na.ID); err != nil {
		return nil, false, err
	}
	return a, false, tx.Commit(ctx)
}

// CreateAccounts creates many accounts, and their account.created events,
// in one round trip; never atomic: an id that exists already gets
// duplicate_account, the others are created.
func (db *DB) CreateAccounts(ctx context.Context, ledgerID int64, nas []ledgerd.NewAccount) ([]ledgerd.AccountResult, error) {
	conn, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	created, err := insertAccounts(ctx, conn, ledgerID, nas)
	if err != nil {
		return nil, err
	}
	out := make([]ledgerd.AccountResult, len(nas))
	for i := range nas {
		if a := created[nas[i].ID]; a != nil {
			out[i].Account = a
			delete(created, nas[i].ID) // a later duplicate in the same batch is a duplicate
		} else {
			out[i].Err = ledgerd.Errorf(ledgerd.CodeDuplicateAccount, "account %s already exists", nas[i].ID)
		}
	}
	return out, nil
}

// claimAccountKey claims an account request's key in tx (docs/api.md: a
// duplicate in flight is waited for, at most 5 s, then
// idempotency_in_progress). It returns nil, nil when the caller now owns
// the key, the account as it is now when the key holds the same request's
// success (a replay), and idempotency_key_reused when it holds anything
// else.
func (db *DB) claimAccountKey(ctx context.Context, tx pgx.Tx, ledgerID int64, idem *ledgerd.Idempotency) (*ledgerd.Account, error) {
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
		return nil, err
	}
	rec, err := db.claimKey(ctx, tx, ledgerID, idem)
	if pgCode(err) == "55P03" {
		return nil, inProgress()
	}
	if err != nil || rec == nil {
		return nil, err
	}
	if rec.AccountID == nil || string(rec.Hash) != string(idem.Hash) {
		return nil, reusedKey()
	}
	return scanAccount(tx.QueryRow(ctx, AccountByIDSQL, ledgerID, *rec.AccountID))
}

func inProgress() *ledgerd.Error {
	return ledgerd.Errorf(ledgerd.CodeIdempotencyInProgress, "a request with this Idempotency-Key is still in progress; retry later")
}

// errNoAccount rolls back a patch of an account that does not exist, so
// that an idempotency key it claimed stays free (404 is not stored).
var errNoAccount = errors.New("no such account")

// PatchAccount applies a patch; nil, false, nil when the account does not
// exist. With idem, the key is claimed first (a duplicate in flight is
// waited for, at most 5 s) and a success is stored: a retry replays the
// account as it is now, any other request with the key is
// idempotency_key_reused.
func (db *DB) PatchAccount(ctx context.Context, ledgerID int64, id string, p *ledgerd.AccountPatch, idem *ledgerd.Idempotency) (out *ledgerd.Account, replayed bool, err error) {
	err = db.beginFunc(ctx, func(tx pgx.Tx) error {
		if idem != nil {
			// The key before the ledger lock: waiting for a duplicate must
			// not hold the ledger's batch writers up.
			a, err := db.claimAccountKey(ctx, tx, ledgerID, idem)
			if err != nil || a != nil {
				out, replayed = a, a != nil
				return err
			}
			// The 5 s bound is for the key only: waiting for the ledger
			// lock behind a large batch is not "a duplicate in flight".
			if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 0"); err != nil {
				return err
			}
		}
		// The ledger's ordering lock, as every writer of account rows
		// takes it: batches then read accounts without row locks, and a
		// new min_balance applies from the next batch on. Moving the
		// epoch tells batch writers their cached accounts are stale.
		if _, err := tx.Exec(ctx, PatchLockSQL, ledgerID); err != nil {
			return err
		}
		a, err := scanAccount(tx.QueryRow(ctx, AccountByIDSQL, ledgerID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoAccount
		}
		if err != nil {
			return err
		}
		md := a.Metadata
		if md == nil {
			md = map[string]string{}
		}
		for k, v := range p.Metadata {
			if v == nil {
				delete(md, k)
			} else {
				md[k] = *v
			}
		}
		if len(md) > ledgerd.MaxMetadataKeys {
			return ledgerd.Invalid("metadata", fmt.Sprintf("the merged metadata would have more than %d keys", ledgerd.MaxMetadataKeys))
		}
		minb := a.MinBalance
		if p.SetMinBalance {
			minb = p.MinBalance
		}
		status := a.Status
		if p.Status != "" {
			status = p.Status
		}
		out, err = scanAccount(tx.QueryRow(ctx, `WITH a AS (UPDATE accounts SET metadata = $3, min_balance = $4, status = $5 WHERE ledger_id = $1 AND id = $2 RETURNING *)
			SELECT `+accountCols+` FROM `+accountHead("a"),
			ledgerID, id, metadataJSON(md), minb, status))
		if err != nil {
			return err
		}
		if status != a.Status {
			// Under the ordering lock taken above: the event takes its
			// place after every transaction that could still debit the
			// account, and before every one that cannot.
			if err := insertStatusEvent(ctx, tx, ledgerID, out, p.Reason); err != nil {
				return err
			}
		}
		if err := writeAudit(ctx, tx, ledgerID, id); err != nil {
			return err
		}
		if idem == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET status = 200, account_id = $3 WHERE ledger_id = $1 AND key = $2`, ledgerID, idem.Key, id)
		return err
	})
	switch {
	case errors.Is(err, errNoAccount):
		return nil, false, nil
	case pgCode(err) == "40P01":
		// A request with the same key in a batch and this patch waited for
		// each other.
		return nil, false, inProgress()
	case err != nil:
		return nil, false, err
	}
	return out, replayed, nil
}

// PatchLockSQL is the ordering lock a PATCH of an account takes.
const PatchLockSQL = `UPDATE ledgers SET accounts_epoch = accounts_epoch + 1 WHERE id = $1`

// ListAccounts lists accounts in bytewise id order.
func (db *DB) ListAccounts(ctx context.Context, ledgerID int64, f ledgerd.AccountFilter) ([]*ledgerd.Account, error) {
	if !matchable(f) {
		return nil, nil
	}
	q, args := ListAccountsQuery(ledgerID, f)
	// Planned for each execution with its values (an unnamed statement):
	// a cached generic plan cannot tell a selective metadata filter from a
	// common one and settles on scanning the ledger's accounts.
	rows, err := db.query(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]*ledgerd.Account, 0, f.Limit)
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListAccountsQuery is ListAccounts' statement for f and its arguments
// (exported for scripts/explaindb). f must be matchable.
func ListAccountsQuery(ledgerID int64, f ledgerd.AccountFilter) (string, []any) {
	args := []any{ledgerID, f.After, f.Limit}
	q := `SELECT * FROM accounts WHERE ledger_id = $1 AND id > $2`
	if f.Prefix != "" {
		// A literal prefix is a range on the C-collated primary key: no LIKE,
		// so '_' and '%' in a prefix mean themselves.
		args = append(args, f.Prefix)
		q += fmt.Sprintf(` AND id >= $%d`, len(args))
		if hi, ok := prefixEnd(f.Prefix); ok {
			args = append(args, hi)
			q += fmt.Sprintf(` AND id < $%d`, len(args))
		}
	}
	if len(f.Metadata) > 0 {
		args = append(args, metadataJSON(f.Metadata))
		q += fmt.Sprintf(` AND metadata @> $%d::jsonb`, len(args))
	}
	// The newest entries are looked up for the page only.
	return `SELECT ` + accountCols + ` FROM ` + accountHead(`(`+q+` ORDER BY id LIMIT $3) a`) + ` ORDER BY a.id`, args
}

// matchable reports whether any account could match f. Account ids are
// printable ASCII and stored metadata never holds NUL, so a filter with
// other bytes matches nothing; it must not reach PostgreSQL, which would
// reject it (NUL in text or jsonb, invalid UTF-8) rather than find nothing.
func matchable(f ledgerd.AccountFilter) bool {
	for i := 0; i < len(f.Prefix); i++ {
		if c := f.Prefix[i]; c == 0 || c >= 0x7f {
			return false
		}
	}
	for k, v := range f.Metadata {
		if !textOK(k) || !textOK(v) {
			return false
		}
	}
	return true
}

// textOK reports whether s is text PostgreSQL accepts: valid UTF-8, no NUL.
func textOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// prefixEnd is the smallest string greater than every string with prefix p
// (bytewise), or false when there is none.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
