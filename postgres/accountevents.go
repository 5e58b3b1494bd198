package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// lockLedgerForEventsSQL takes the ledger's ordering lock, as every writer of its
// events does before writing (docs/api.md §Events).
const lockLedgerForEventsSQL = `SELECT last_sequence FROM ledgers WHERE id = $1 FOR UPDATE`

// InsertAccountsSQL (exported for scripts/explaindb) creates accounts and their account.created events in
// one statement, after lockLedgerForEventsSQL in the same transaction: the events
// take the ledger's last_sequence under the lock, and their ordinals are
// drawn now, so they commit in event order. The event's data is the new
// account as wire renders it; only created_at comes from the database's
// clock (wire.AccountCreatedPrefix). ON CONFLICT cannot touch the same row
// twice in one statement, so a repeated id is filtered first: the first
// one wins.
const InsertAccountsSQL = `WITH u AS (
	SELECT DISTINCT ON (id) id, asset, min_balance, metadata, prefix, event_id, ord
	FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::uuid[])
		WITH ORDINALITY AS t(id, asset, min_balance, metadata, prefix, event_id, ord)
	ORDER BY id, ord
), a AS (
	INSERT INTO accounts (ledger_id, id, asset, min_balance, metadata, entries_from)
	SELECT $1, u.id, u.asset, u.min_balance, u.metadata::jsonb,
		(SELECT txid_month(last_created_at, 0) FROM ledgers WHERE id = $1)
	FROM u ORDER BY u.ord
	ON CONFLICT (ledger_id, id) DO NOTHING RETURNING ` + newAccountCols + `
), e AS (
	INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
	SELECT u.event_id, $1, (SELECT last_sequence FROM ledgers WHERE id = $1), 'account.created',
		(u.prefix || to_char(a.created_at AT TIME ZONE 'UTC', '` + wire.PGTimeFormat + `') || '` + wire.AccountCreatedSuffix + `')::json,
		a.created_at
	FROM a JOIN u ON u.id = a.id ORDER BY u.ord
)
SELECT ` + newAccountCols + ` FROM a`

// insertAccountsAuditSQL records the request's audit entry when it
// created an account (in this transaction: xmin), in the pipeline of the
// accounts' insert and under its ledger lock. A creation's target is the
// new account's path; a batch's is its own path.
const insertAccountsAuditSQL = `INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target)
	SELECT $1, clock_timestamp(), $2, $3, $4, $5, CASE WHEN $7 THEN $6 || '/' || a.id ELSE $6 END
	FROM accounts a WHERE a.ledger_id = $1 AND a.id = ANY($8::text[]) AND a.xmin = pg_current_xact_id()::xid LIMIT 1`

// batchSender is a connection or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// insertAccounts creates those of nas that do not exist yet, with their
// events, in one round trip, and returns them by id. On a connection
// outside a transaction the two statements run as one implicit
// transaction (one Sync for the pipeline).
func insertAccounts(ctx context.Context, s batchSender, ledgerID int64, nas []ledgerd.NewAccount) (map[string]*ledgerd.Account, error) {
	ids := make([]string, len(nas))
	assets := make([]string, len(nas))
	mins := make([]*int64, len(nas))
	mds := make([]string, len(nas))
	prefixes := make([]string, len(nas))
	eventIDs := make([]string, len(nas))
	for i := range nas {
		na := &nas[i]
		ids[i], assets[i], mins[i], mds[i] = na.ID, na.Asset, na.MinBalance, metadataJSON(na.Metadata)
		prefixes[i] = string(wire.AccountCreatedPrefix(na))
		eventIDs[i] = ledgerd.NewEventID(time.Now())[len(ledgerd.EventIDPrefix):]
	}
	b := &pgx.Batch{}
	b.Queue(lockLedgerForEventsSQL, ledgerID)
	b.Queue(InsertAccountsSQL, ledgerID, ids, assets, mins, mds, prefixes, eventIDs)
	if a := ledgerd.AuditFrom(ctx); a != nil {
		b.Queue(insertAccountsAuditSQL, ledgerID, a.Status, a.Actor, a.RequestID, a.Action, a.Target, a.Created, ids)
	}
	br := s.SendBatch(ctx, b)
	created, err := readInserted(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return created, err
}

func readInserted(br pgx.BatchResults) (map[string]*ledgerd.Account, error) {
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	created := map[string]*ledgerd.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		created[a.ID] = a
	}
	return created, rows.Err()
}

// insertStatusEvent records account.frozen or account.unfrozen for a as
// just committed in tx, which holds the ledger's ordering lock: data is
// the account plus "reason" (null when none was given).
func insertStatusEvent(ctx context.Context, tx pgx.Tx, ledgerID int64, a *ledgerd.Account, reason *string) error {
	typ := ledgerd.EventAccountUnfrozen
	if a.Frozen() {
		typ = ledgerd.EventAccountFrozen
	}
	data := wire.AppendAccount(nil, a)
	data = append(data[:len(data)-1], `,"reason":`...)
	if reason != nil {
		data = ledgerd.AppendJSONString(data, *reason)
	} else {
		data = append(data, "null"...)
	}
	data = append(data, '}')
	id := ledgerd.NewEventID(time.Now())[len(ledgerd.EventIDPrefix):]
	_, err := tx.Exec(ctx, `INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
		SELECT $2, $1, last_sequence, $3, $4::json, now() FROM ledgers WHERE id = $1`, ledgerID, id, string(typ), string(data))
	return err
}
