package main

import (
	"encoding/json"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
	"github.com/ledgerd/ledgerd/wire"
)

// The queries of the API, with where they run and a note on the plan they
// should get. Every statement is the server's own (exported from
// postgres/*.go); only the example arguments are this program's.

// accountsSQL is ListAccounts' statement for f.
func accountsSQL(f ledgerd.AccountFilter) string {
	q, _ := postgres.ListAccountsQuery(0, f)
	return q
}

// accountsArgs is ListAccounts' arguments for f.
func accountsArgs(f ledgerd.AccountFilter) func(v *values) []any {
	return func(v *values) []any {
		_, args := postgres.ListAccountsQuery(v.ledgerID, f)
		return args
	}
}

// txPageSQL is ListTransactions' page statement for f.
func txPageSQL(f ledgerd.TxFilter) string {
	q, _ := postgres.ListTransactionsQuery(0, 0, 0, f)
	return q
}

// txPageArgs is ListTransactions' page arguments for f, with the
// sequence range (lo, hi) that bounds(v) gives.
func txPageArgs(f ledgerd.TxFilter, bounds func(v *values) (lo, hi int64)) func(v *values) []any {
	return func(v *values) []any {
		lo, hi := bounds(v)
		_, args := postgres.ListTransactionsQuery(v.ledgerID, lo, hi, f)
		return args
	}
}

// fromStart is the sequence range of a list without a cursor or times.
func fromStart(*values) (int64, int64) { return 0, math.MaxInt64 }

type query struct {
	name  string
	where string // file and function
	route string // API route(s) or loop that runs it
	note  string // which index and why
	sql   string
	args  func(v *values) []any
	// batchTx: run under the SET LOCAL planner settings WriteBatch uses
	// for its transaction.
	batchTx bool
	// setup runs in the same (rolled back) transaction before EXPLAIN.
	setup []string
}

// batchSettings are the SET LOCAL statements WriteBatch sends after BEGIN.
var batchSettings = []string{
	"SET LOCAL enable_seqscan = off",
	"SET LOCAL enable_hashjoin = off",
	"SET LOCAL enable_mergejoin = off",
}

func queries() []query {
	firstPage := ledgerd.AccountFilter{Limit: 101}
	byPrefix := ledgerd.AccountFilter{Prefix: "acct:0042", Limit: 101}
	selective := ledgerd.AccountFilter{Metadata: map[string]string{"owner": "user4242"}, Limit: 101}
	common := ledgerd.AccountFilter{Metadata: map[string]string{"tier": "gold"}, Limit: 101}
	txs := ledgerd.TxFilter{Limit: 101}
	ofAccount := ledgerd.TxFilter{Account: "acct:004242", Limit: 101}
	ofHotAccount := ledgerd.TxFilter{Account: "acct:000000", Limit: 101}
	byReference := ledgerd.TxFilter{Reference: "ref-500000", Limit: 101}
	return []query{
		{
			name: "Ledger by name", where: "postgres/ledgers.go (*DB).LedgerByName",
			route: "every route with `{ledger}` on a node's first use of the name (then cached); `GET /v1/ledgers/{ledger}` always",
			note:  "Unique index `ledgers_name_key` on the C-collated name.",
			sql:   postgres.LedgerByNameSQL,
			args:  func(v *values) []any { return []any{"bench"} },
		},
		{
			name: "API key by id", where: "postgres/apikeys.go (*DB).APIKeyByID",
			route: "authentication of every request with a ledger key (cached 2 s per node); `DELETE` and `PATCH /v1/api-keys/{id}`",
			note:  "Primary key `api_keys_pkey`, then the ledger's primary key for its name: two single-row probes.",
			sql:   postgres.APIKeyByIDSQL,
			args:  func(v *values) []any { return []any{v.apiKeyID} },
		},
		{
			name: "List API keys of a ledger", where: "postgres/apikeys.go (*DB).ListAPIKeys",
			route: "`GET /v1/api-keys?ledger=`",
			note: "A ledger admin's list: `api_keys_ledger (ledger_id, id)` in its order, entered at the cursor and stopped " +
				"by the limit; then the ledger's primary key for its name.",
			sql:  postgres.ListLedgerAPIKeysSQL,
			args: func(v *values) []any { return []any{v.ledgerID, "", 101} },
		},
		{
			name: "List API keys of every ledger", where: "postgres/apikeys.go (*DB).ListAPIKeys",
			route: "`GET /v1/api-keys` with the bootstrap key",
			note: "`$1 = 0` is a constant condition: `api_keys_pkey` in id order, entered at the cursor and stopped by the " +
				"limit, each key joined to its ledger by primary key.",
			sql:  postgres.ListAllAPIKeysSQL,
			args: func(v *values) []any { return []any{int64(0), "", 101} },
		},
		{
			name: "Account by id", where: "postgres/accounts.go (*DB).Account",
			route: "`GET /v1/ledgers/{ledger}/accounts/{account}`",
			note: "Primary key `accounts_pkey (ledger_id, id)`: one index probe and one heap fetch; the ledger row by primary key; then " +
				"the account's newest entry, one backward probe of `entries_account` in the months between the row's `entries_from` and " +
				"the ledger's last commit — with checkpoints every few seconds, the current month alone (the other partitions show " +
				"`never executed`: the bounds come from the rows, so the executor prunes per row). Its balance wins when its version " +
				"is newer than the row's checkpoint.",
			sql:  postgres.AccountByIDSQL,
			args: func(v *values) []any { return []any{v.ledgerID, "acct:004242"} },
		},
		{
			name: "List accounts (first page)", where: "postgres/accounts.go (*DB).ListAccounts",
			route: "`GET /v1/ledgers/{ledger}/accounts?limit=100`",
			note: "Keyset pagination on `accounts_pkey`: the index is in (ledger_id, id) order with the C collation, so `ORDER BY id LIMIT` " +
				"stops after limit + 1 rows, whatever the page (the cursor is `id > $2`).",
			sql:  accountsSQL(firstPage),
			args: accountsArgs(firstPage),
		},
		{
			name: "List accounts by prefix", where: "postgres/accounts.go (*DB).ListAccounts",
			route: "`GET /v1/ledgers/{ledger}/accounts?prefix=acct:0042`",
			note: "The literal prefix becomes the range `id >= prefix AND id < prefixEnd(prefix)` (no LIKE): an index range on " +
				"`accounts_pkey`, correct for `_` and `%` in ids, and bounded by the limit.",
			sql:  accountsSQL(byPrefix),
			args: accountsArgs(byPrefix),
		},
		{
			name: "List accounts by metadata (selective)", where: "postgres/accounts.go (*DB).ListAccounts",
			route: "`GET /v1/ledgers/{ledger}/accounts?metadata[owner]=user4242`",
			note: "`metadata @> $4` can use the GIN index `accounts_metadata (jsonb_path_ops)`. Whether the planner takes it or walks " +
				"`accounts_pkey` in order and filters depends on the estimated selectivity: see the plan. ListAccounts runs as an " +
				"unnamed statement (`QueryExecModeExec`), planned for each execution, so the generic plan below is never used.",
			sql:  accountsSQL(selective),
			args: accountsArgs(selective),
		},
		{
			name: "List accounts by metadata (common value)", where: "postgres/accounts.go (*DB).ListAccounts",
			route: "`GET /v1/ledgers/{ledger}/accounts?metadata[tier]=gold`",
			note: "A value a tenth of the accounts hold: walking `accounts_pkey` in id order and filtering finds a page after about " +
				"ten times the limit, cheaper than collecting every match from the GIN index and sorting.",
			sql:  accountsSQL(common),
			args: accountsArgs(common),
		},
		{
			name: "Transaction by id", where: "postgres/transactions.go (*DB).Transaction",
			route: "`GET /v1/ledgers/{ledger}/transactions/{id}`",
			note: "The id is a UUIDv7 and the partition key: the custom plan prunes to the one monthly partition at plan time, the " +
				"generic plan at executor start (`Subplans Removed`); then that partition's primary key.",
			sql:  postgres.TransactionByIDSQL,
			args: func(v *values) []any { return []any{v.midTx, v.ledgerID} },
		},
		{
			name: "List transactions (first page)", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?limit=100`",
			note: "`transactions_sequence (ledger_id, sequence)` on every partition, merged in sequence order (Merge Append); the " +
				"limit stops it after limit + 1 rows. Partitions that hold no rows of the range cost one index probe each.",
			sql:  txPageSQL(txs),
			args: txPageArgs(txs, fromStart),
		},
		{
			name: "Tail the log (after = N)", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?after=N` (and every next page: the cursor is a sequence)",
			note:  "Same index, entered at `sequence > N`: a consumer tailing the log costs the same at sequence 1,000,000 as at 1.",
			sql:   txPageSQL(txs),
			args:  txPageArgs(txs, func(v *values) (int64, int64) { return v.lastSeq - 50, math.MaxInt64 }),
		},
		{
			name: "Transactions of an account", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?account=acct:004242`",
			note: "`entries_account (ledger_id, account_id, sequence)` gives the account's legs in sequence order (one Merge Append over " +
				"the partitions, stopped by the limit); DISTINCT ON folds the two legs of a self-touching transaction; each of the at most " +
				"limit + 1 ids is then fetched from `transactions` by primary key, pruned to its partition at run time.",
			sql:  txPageSQL(ofAccount),
			args: txPageArgs(ofAccount, fromStart),
		},
		{
			name: "Transactions of a hot account, first page", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?account=acct:000000`",
			note: "The same for an account in a tenth of all transactions (about 100,000 entries): the merge of the partitions' " +
				"index scans must stop at the limit rather than read and sort every entry of the account.",
			sql:  txPageSQL(ofHotAccount),
			args: txPageArgs(ofHotAccount, fromStart),
		},
		{
			name: "Transactions of a hot account, late page", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?account=acct:000000&after=N`",
			note:  "The same for an account in a tenth of all transactions, far into its history: the index is entered at the cursor.",
			sql:   txPageSQL(ofHotAccount),
			args:  txPageArgs(ofHotAccount, func(v *values) (int64, int64) { return v.lastSeq * 9 / 10, math.MaxInt64 }),
		},
		{
			name: "Transaction by reference", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?reference=ref-500000`",
			note: "Primary key `transaction_references_pkey (ledger_id, reference)` gives the id (unpartitioned: references are unique " +
				"per ledger), then the transaction by primary key in its partition.",
			sql:  txPageSQL(byReference),
			args: txPageArgs(byReference, fromStart),
		},
		{
			name: "Time range: first sequence at or after a moment", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?from=…&to=…` (run once for `from` and once for `to`)",
			note: "created_at never decreases along the sequence, so a time range is a sequence range: " +
				"`ledger_commits_created (ledger_id, created_at, last_sequence)` finds each end with one probe (LIMIT 1) and one " +
				"heap fetch for `first_sequence`; `ledger_commits` is not partitioned, so the cost does not grow with the months " +
				"kept online. The page itself is then the sequence-range scan above.",
			sql:  postgres.FirstSequenceFromSQL,
			args: func(v *values) []any { return []any{v.ledgerID, v.from} },
		},
		{
			name: "Time range: the page", where: "postgres/transactions.go (*DB).ListTransactions",
			route: "`GET /v1/ledgers/{ledger}/transactions?from=…&to=…`",
			note:  "With the two sequence bounds found, the page is a range on `transactions_sequence`.",
			sql:   txPageSQL(txs),
			args:  txPageArgs(txs, func(v *values) (int64, int64) { return v.fromSeq - 1, v.toSeq }),
		},
		{
			name: "Batch write: ordering lock", where: "postgres/prepared.go (*DB).WriteBatch",
			route:   "every transaction write (one per group-commit batch, not per request)",
			note:    "The ledger's row by primary key, `FOR UPDATE`: the per-ledger ordering lock, held until COMMIT.",
			sql:     postgres.LockLedgerSQL,
			args:    func(v *values) []any { return []any{v.ledgerID} },
			batchTx: true,
		},
		{
			name: "Batch write, fast path: the guard", where: "postgres/fastpath.go (*FastBatch).Commit",
			route: "every transaction write on the fast path (once per batch, after its inserts)",
			note: "The ordering lock as above, taken in the CTE, and a division that fails the transaction unless the ledger " +
				"row still holds the sequence and accounts epoch the writer's cache was taken at (docs/architecture.md §3a).",
			sql:     postgres.GuardSQL,
			args:    func(v *values) []any { return []any{v.ledgerID, v.lastSeq, 0} },
			batchTx: true,
		},
		{
			name: "Batch write: read the touched accounts", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write (per batch: 1,000 transfers touch about 1,800 accounts here)",
			note: "A nested loop from `unnest(ledger_ids, ids)` into `accounts_pkey`: one unique probe per account, no row locks " +
				"(every writer of account rows — batches and PATCH — holds the ledger's ordering lock). The ledger id is a join " +
				"column rather than `ledger_id = $1`, so that stale statistics of a young ledger cannot turn the probes into a scan " +
				"of the ledger; and WriteBatch runs with `enable_seqscan`, `enable_hashjoin` and `enable_mergejoin` off (SET LOCAL), " +
				"so a generic plan made while the table was small stays an index plan. One statement for the whole batch, in the " +
				"same round trip as BEGIN, the lock and the other reads.",
			sql:     postgres.LoadAccountsSQL,
			args:    func(v *values) []any { return []any{repeat(v.ledgerID, len(v.batch.accounts)), v.batch.accounts} },
			batchTx: true,
		},
		{
			name: "Batch write: idempotency lookup", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write with an Idempotency-Key (per batch: 1,000 keys, 10 of them retries)",
			note: "Nested loops: `unnest` → `idempotency_keys_pkey (ledger_id, key)`, and for the keys found the stored " +
				"transaction by primary key, pruned to its partition at run time.",
			sql:     postgres.LoadKeysSQL,
			args:    func(v *values) []any { return []any{repeat(v.ledgerID, len(v.batch.keys)), v.batch.keys} },
			batchTx: true,
		},
		{
			name: "Batch write: reference lookup", where: "postgres/prepared.go (*DB).WriteBatch",
			route:   "every transaction write with a reference (per batch: 500 references)",
			note:    "A nested loop from `unnest` into `transaction_references_pkey (ledger_id, reference)`: one probe per reference.",
			sql:     postgres.LoadReferencesSQL,
			args:    func(v *values) []any { return []any{repeat(v.ledgerID, len(v.batch.refs)), v.batch.refs} },
			batchTx: true,
		},
		{
			name: "Batch write: read the targets of actions", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "`POST …/transactions/{id}/post`, `…/void`, `…/reverse`, and hold expiry (per batch: the holds or originals acted on)",
			note: "A nested loop from `unnest(ids)` into the transactions' primary keys, each probe pruned to its month at run " +
				"time (the id is the partition key). No row locks: only batch writers change a transaction, under the ordering lock.",
			sql:     postgres.LoadTargetsSQL,
			args:    func(v *values) []any { return []any{v.holds, v.ledgerID} },
			batchTx: true,
		},
		{
			name: "Batch write: insert transactions", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write (per batch: 1,000 rows in one statement)",
			note: "Set-based: one INSERT from `unnest` of column arrays; tuple routing sends every row to its month's partition. " +
				"The cost is index maintenance (primary key, `transactions_sequence`); the time → sequence map costs one " +
				"`ledger_commits` row per batch instead of a third index entry per transaction.",
			sql: postgres.InsertTransactionsSQL,
			args: func(v *values) []any {
				b := &v.batch
				return []any{v.ledgerID, b.now, b.txID, b.txSeq, b.txStatus, b.txPostings, b.txMetadata, b.txRef, b.txExpires,
					b.txNoID, b.txNoID}
			},
			batchTx: true,
		},
		{
			name: "Batch write: insert entries", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write (per batch: 2,000 rows in one statement)",
			note:  "Set-based, like the transactions: one INSERT from `unnest`, maintaining `entries_account`.",
			sql:   postgres.InsertEntriesSQL,
			args: func(v *values) []any {
				b := &v.batch
				zero := make([]int64, len(b.enAfter))
				return []any{v.ledgerID, b.now, b.enTx, b.enAccount, b.enSeq, b.enIndex, b.enAmount, b.enPending, b.enAfter, b.enVersion,
					zero, zero}
			},
			batchTx: true,
		},
		{
			name: "Batch write: balance checkpoint", where: "postgres/checkpoint.go (*batchState).queueAccountUpdate",
			route: "a commit once per checkpoint interval (LEDGERD_BALANCE_CHECKPOINT, 10 s) per ledger, and the few after it; in every commit with the interval 0",
			note: "Each account row behind its entries is written once with its newest state, only over an older version: a nested " +
				"loop from `unnest` into `accounts_pkey` (the batch's planner settings rule out a hash join over a scan of the table).",
			sql: postgres.CheckpointAccountsSQL,
			args: func(v *values) []any {
				b := &v.batch
				return []any{repeat(v.ledgerID, len(b.uaID)), b.uaID, b.uaPosted, b.uaPD, b.uaPC, b.uaVersion,
					postgres.TransactionIDAt(time.Now(), func() uint64 { return 0 })}
			},
			batchTx: true,
		},
		{
			name: "Batch write: move the ledger's sequence", where: "postgres/prepared.go (*DB).WriteBatch",
			route:   "every transaction write (once per batch)",
			note:    "The locked ledger row, by primary key.",
			sql:     postgres.UpdateLedgerSQL,
			args:    func(v *values) []any { return []any{v.ledgerID, v.lastSeq + 1000, v.batch.now} },
			batchTx: true,
		},
		{
			name: "Batch write: record the commit", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write (once per batch)",
			note: "One row per batch: every transaction of the batch shares its created_at, so the batch's sequence range is " +
				"all the time-range, balance-as-of and statement lookups need. Two B-tree inserts (`ledger_commits_pkey`, " +
				"`ledger_commits_created`), both at the right edge.",
			sql: postgres.InsertCommitSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, v.lastSeq + 1, v.lastSeq + 1000, v.batch.now}
			},
			batchTx: true,
		},
		{
			name: "Batch write: update the targets of actions", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "`…/post`, `…/void`, `…/reverse`, hold expiry (a hold's status and `resolved_by`, an original's `reversed_by`)",
			note:  "A nested loop from `unnest` into the partitions' primary keys: one probe per target.",
			sql:   postgres.UpdateTargetsSQL,
			args: func(v *values) []any {
				n := len(v.holds)
				st, by := make([]string, n), make([]pgtype.UUID, n)
				for i := range st {
					st[i], by[i] = "captured", v.batch.txID[i]
				}
				return []any{v.holds, st, by, make([]pgtype.UUID, n), v.ledgerID}
			},
			batchTx: true,
		},
		{
			name: "Batch write: insert references", where: "postgres/prepared.go (*DB).WriteBatch",
			route:   "every transaction write with references (per batch: 500 rows)",
			note:    "Set-based INSERT; the primary key enforces per-ledger uniqueness (the in-memory check under the lock comes first).",
			sql:     postgres.InsertReferencesSQL,
			args:    func(v *values) []any { return []any{v.ledgerID, v.batch.refs, v.batch.refTx} },
			batchTx: true,
		},
		{
			name: "Batch write: delete expired idempotency records", where: "postgres/prepared.go (*DB).WriteBatch",
			route:   "a transaction write whose key has a record past its expiry (per batch: those keys only)",
			note:    "A nested loop from `unnest` into `idempotency_keys_pkey`; the old record goes before the key is stored again.",
			sql:     postgres.DeleteExpiredBatchKeysSQL,
			args:    func(v *values) []any { return []any{repeat(v.ledgerID, 10), v.batch.keys[:10]} },
			batchTx: true,
		},
		{
			name: "Batch write: store idempotency outcomes", where: "postgres/prepared.go (*DB).WriteBatch",
			route: "every transaction write with an Idempotency-Key (per batch: 1,000 rows)",
			note: "A plain set-based INSERT: under the ordering lock no other batch can hold these keys. An account creation " +
				"(outside the lock) that took one meanwhile makes it a unique violation of `idempotency_keys_pkey`: the batch rolls " +
				"back and is retried item by item.",
			sql: postgres.InsertKeysSQL,
			args: func(v *values) []any {
				b := &v.batch
				return []any{v.ledgerID, b.now, b.now.Add(7 * 24 * time.Hour), b.ikKey, b.ikHash, b.ikStatus, b.ikTx, b.ikProblem}
			},
			batchTx: true,
		},
		{
			name: "Holds past their deadline", where: "postgres/transactions.go (*DB).DueHolds",
			route: "every node, every `LEDGERD_EXPIRY_INTERVAL` (default 500 ms)",
			note: "Meant for the partial index `transactions_expiry (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL`, " +
				"which holds only the holds still waiting. `now()` is stable, so `expires_at <= now()` is an index condition: each " +
				"partition's scan reads only its due holds, and when none is due it reads nothing.",
			sql:  postgres.DueHoldsSQL,
			args: func(v *values) []any { return []any{1000} },
		},
		{
			name: "Balance as of: last sequence at or before a moment", where: "postgres/history.go (*DB).BalanceAt",
			route: "`GET /v1/ledgers/{ledger}/accounts/{account}/balance?at=…`",
			note: "`ledger_commits_created (ledger_id, created_at, last_sequence)` read backwards from `at`: one probe (LIMIT 1), " +
				"index-only since the index carries `last_sequence`.",
			sql:  postgres.SequenceAtOrBeforeSQL,
			args: func(v *values) []any { return []any{v.ledgerID, v.from} },
		},
		{
			name: "Balance as of: the account's last entry before a sequence", where: "postgres/history.go (*DB).balanceBefore",
			route: "`GET …/accounts/{account}/balance?at=…`; `GET …/accounts/{account}/entries` (opening and closing balances)",
			note: "`entries_account (ledger_id, account_id, sequence, posting_index)` read backwards from the sequence: the running " +
				"balance stored on the entry answers without summing history.",
			sql:  postgres.BalanceBeforeSQL,
			args: func(v *values) []any { return []any{v.ledgerID, "acct:004242", v.fromSeq} },
		},
		{
			name: "Statement: first sequence at or after a moment", where: "postgres/history.go (*DB).Statement",
			route: "`GET …/accounts/{account}/entries?from=…&to=…` (once for `from`, once for `to`)",
			note:  "`ledger_commits_created`, forwards: one probe (LIMIT 1) and one heap fetch for `first_sequence`.",
			sql:   postgres.FirstSequenceFromSQL,
			args:  func(v *values) []any { return []any{v.ledgerID, v.from} },
		},
		{
			name: "Statement: a page of lines", where: "postgres/history.go (*DB).Statement",
			route: "`GET /v1/ledgers/{ledger}/accounts/{account}/entries`",
			note: "`entries_account` in (sequence, posting_index) order from the cursor, merged over the partitions and stopped at the " +
				"limit; holds are filtered out (`NOT pending`).",
			sql: postgres.StatementLinesSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, "acct:004242", v.fromSeq - 1, int64(32767), v.toSeq, 101}
			},
		},
		{
			name: "Statement of a hot account, first page", where: "postgres/history.go (*DB).Statement",
			route: "`GET /v1/ledgers/{ledger}/accounts/acct:000000/entries`",
			note:  "The same for the account in a tenth of all transactions, from its beginning.",
			sql:   postgres.StatementLinesSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, "acct:000000", int64(0), int64(32767), int64(1<<63 - 1), 101}
			},
		},
		{
			name: "Commit outcome unknown: is the batch there?", where: "postgres/errors.go (*DB).BatchCommitted",
			route: "after a connection broke during COMMIT",
			note:  "The batch's first transaction id: pruned to one partition, primary key.",
			sql:   postgres.BatchCommittedSQL,
			args:  func(v *values) []any { return []any{v.midTx, v.ledgerID} },
		},
		{
			name: "Account creation: claim the idempotency key", where: "postgres/idempotency.go (*DB).claimKey",
			route: "`POST /v1/ledgers/{ledger}/accounts` with an Idempotency-Key",
			note:  "INSERT … ON CONFLICT on `idempotency_keys_pkey`: a placeholder row that concurrent retries wait on.",
			sql:   postgres.ClaimKeySQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, v.batch.idempotencyID, []byte{1, 2, 3}, "168 hours"}
			},
		},
		{
			name: "Account creation: read a stored outcome", where: "postgres/idempotency.go (*DB).claimKey",
			route: "`POST /v1/ledgers/{ledger}/accounts` retried with its Idempotency-Key",
			note:  "`idempotency_keys_pkey`.",
			sql:   postgres.ReadKeySQL,
			args:  func(v *values) []any { return []any{v.ledgerID, v.liveKey} },
		},
		{
			name: "Create an account", where: "postgres/accountevents.go insertAccounts",
			route: "`POST /v1/ledgers/{ledger}/accounts`",
			note: "After the ledger's ordering lock (same round trip): INSERT … ON CONFLICT DO NOTHING on `accounts_pkey` (a " +
				"conflict is `duplicate_account`), and the account.created event into `events` (its `events_pkey` and " +
				"`events_position`), positioned at the ledger's last sequence read under the lock.",
			sql:   postgres.InsertAccountsSQL,
			setup: []string{"SELECT last_sequence FROM ledgers WHERE id = 1 FOR UPDATE"},
			args: func(v *values) []any {
				return newAccountArgs(v.ledgerID, []string{"new:alice"}, []string{"USD"}, []*int64{nil}, []string{`{"owner":"alice"}`})
			},
		},
		{
			name: "Create accounts in a batch", where: "postgres/accountevents.go insertAccounts",
			route: "`POST /v1/ledgers/{ledger}/accounts/batch` (1,000 accounts, a tenth existing)",
			note: "One INSERT from `unnest`, deduplicated in the request, ON CONFLICT DO NOTHING on `accounts_pkey`; the events of " +
				"the accounts created, in request order, in the same statement.",
			sql:   postgres.InsertAccountsSQL,
			setup: []string{"SELECT last_sequence FROM ledgers WHERE id = 1 FOR UPDATE"},
			args: func(v *values) []any {
				b := &v.batch
				return newAccountArgs(v.ledgerID, b.naIDs, b.naAssets, b.naMins, b.naMetadata)
			},
		},
		{
			name: "Events: a page", where: "postgres/events.go (*DB).ReadEvents",
			route: "`GET /v1/ledgers/{ledger}/events?after=…&limit=100` (and the relay of the workers)",
			note: "Bounded by the ledger's `last_sequence` in the same snapshot. The log side is `transactions_sequence` " +
				"entered at the position, at most limit rows; the events side is `events_position` (ledger_id, after_sequence, " +
				"ordinal) between the position and the bound, at most limit rows. (Here the events rows are the accounts' creations, " +
				"all at position 0, and a flag every 200 transactions.)",
			sql: postgres.ReadEventsSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, v.midSeq, int64(0), nil, 100, v.midSeq + 100, 100, true, true}
			},
		},
		{
			name: "Events: a rare type", where: "postgres/events.go (*DB).ReadEvents",
			route: "`GET /v1/ledgers/{ledger}/events?type=transaction.reversed` (none in this data set)",
			note: "The type filter is applied while scanning, and the scan stops at its budget (10,000 sequences): the page is " +
				"empty with a next_cursor at the budget's end, never a scan of the whole log.",
			sql: postgres.ReadEventsSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, v.midSeq, int64(0), []string{"transaction.reversed"}, 100, v.midSeq + 10_000, 10_000, false, true}
			},
		},
		{
			name: "Events: the position of after=", where: "postgres/events.go (*DB).EventPosition",
			route: "`GET /v1/ledgers/{ledger}/events?after=evt_…`",
			note:  "A transaction's primary key (pruned to one partition) or the events row's: one probe each.",
			sql:   postgres.EventPositionSQL,
			args:  func(v *values) []any { return []any{v.ledgerID, v.midTx} },
		},
		{
			name: "Patch an account: the ordering lock", where: "postgres/accounts.go (*DB).PatchAccount",
			route: "`PATCH /v1/ledgers/{ledger}/accounts/{account}`",
			note: "PATCH takes the ledger's ordering lock like a batch (so batches can read accounts without row locks), then " +
				"reads and updates the account by `accounts_pkey`.",
			sql:  postgres.PatchLockSQL,
			args: func(v *values) []any { return []any{v.ledgerID} },
		},
		{
			name: "Readiness: schema version", where: "postgres/migrate.go (*DB).CheckSchema",
			route: "`GET /readyz`; `serve` at start",
			note:  "goose's version table holds one row per migration: a sequential scan of a handful of rows is the right plan.",
			sql:   postgres.SchemaVersionSQL,
			args:  func(v *values) []any { return nil },
		},
		{
			name: "Maintenance: expire idempotency keys (backlog)", where: "postgres/idempotency.go (*DB).DeleteExpiredKeys",
			route: "every node, once a minute, in slices of 10,000",
			note: "`now()` is stable, so `expires_at < now()` is an index condition of the BRIN index `idempotency_keys_expiry`: " +
				"a bitmap scan of the block ranges that can hold expired rows (rows arrive in expiry order), stopped at 10,000 rows.",
			sql:  postgres.DeleteExpiredKeysSQL,
			args: func(v *values) []any { return []any{10_000} },
		},
		{
			name: "Maintenance: expire idempotency keys (steady state)", where: "postgres/idempotency.go (*DB).DeleteExpiredKeys",
			route: "every node, once a minute, when the previous run left nothing expired",
			note: "The common case: nothing (or little) has expired since the last run. The BRIN index narrows the scan to the " +
				"block ranges around the expiry boundary, so the cost does not grow with the seven days of keys kept. " +
				"(Setup: the backlog is deleted first.)",
			sql:   postgres.DeleteExpiredKeysSQL,
			args:  func(v *values) []any { return []any{10_000} },
			setup: []string{"DELETE FROM idempotency_keys WHERE expires_at < now()"},
		},
	}
}

// newAccountArgs are insertAccounts' arguments for these accounts.
func newAccountArgs(ledgerID int64, ids, assets []string, mins []*int64, mds []string) []any {
	prefixes := make([]string, len(ids))
	eventIDs := make([]string, len(ids))
	for i := range ids {
		var md map[string]string
		_ = json.Unmarshal([]byte(mds[i]), &md)
		prefixes[i] = string(wire.AccountCreatedPrefix(&ledgerd.NewAccount{ID: ids[i], Asset: assets[i], MinBalance: mins[i], Metadata: md}))
		eventIDs[i] = ledgerd.NewEventID(time.Now())[len(ledgerd.EventIDPrefix):]
	}
	return []any{ledgerID, ids, assets, mins, mds, prefixes, eventIDs}
}

// repeat is postgres.repeat: n copies of id, for unnest(ledger_ids, keys).
func repeat(id int64, n int) []int64 {
	r := make([]int64, n)
	for i := range r {
		r[i] = id
	}
	return r
}
