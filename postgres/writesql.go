package postgres

// The statements of the batch write path, named so that the tools that
// explain them (scripts/explaindb) run the very SQL the server runs.

// LockLedgerSQL takes the ledger's ordering lock and reads where the batch continues from.
const LockLedgerSQL = `SELECT last_sequence, last_created_at, accounts_epoch FROM ledgers WHERE id = $1 FOR UPDATE`

// LoadTargetsSQL reads the existing transactions a batch's actions name.
const LoadTargetsSQL = `SELECT ` + txCols + ` FROM unnest($1::uuid[]) AS u(id) JOIN transactions t ON t.id = u.id
		WHERE t.ledger_id = $2`

// LoadKeysSQL reads the stored outcomes of a batch's idempotency keys.
const LoadKeysSQL = `SELECT k.key, k.expires_at <= clock_timestamp(), k.request_hash, k.status, k.problem, ` + txCols + `
		FROM unnest($1::bigint[], $2::text[]) AS u(ledger_id, key)
		JOIN idempotency_keys k ON k.ledger_id = u.ledger_id AND k.key = u.key
		LEFT JOIN transactions t ON t.id = k.transaction_id`

// LoadReferencesSQL reads which of a batch's references are taken.
const LoadReferencesSQL = `SELECT r.reference, r.transaction_id FROM unnest($1::bigint[], $2::text[]) AS u(ledger_id, reference)
		JOIN transaction_references r ON r.ledger_id = u.ledger_id AND r.reference = u.reference`

// DeleteExpiredBatchKeysSQL deletes the batch's keys whose records are past their expiry, before they are stored again.
const DeleteExpiredBatchKeysSQL = `DELETE FROM idempotency_keys k USING unnest($1::bigint[], $2::text[]) AS u(ledger_id, key)
			WHERE k.ledger_id = u.ledger_id AND k.key = u.key AND k.expires_at <= clock_timestamp()`

// UpdateLedgerSQL moves the ledger row on.
const UpdateLedgerSQL = `UPDATE ledgers SET last_sequence = $2, last_created_at = $3 WHERE id = $1`

// InsertCommitSQL records a commit's time and sequence range.
const InsertCommitSQL = `INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at) VALUES ($1, $2, $3, $4)`

// UpdateTargetsSQL writes the new status and links of the transactions a batch's actions changed.
const UpdateTargetsSQL = `UPDATE transactions t SET status = u.status, resolved_by = u.resolved_by, reversed_by = u.reversed_by
			FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[]) AS u(id, status, resolved_by, reversed_by)
			WHERE t.id = u.id AND t.ledger_id = $5`

// InsertReferencesSQL inserts a small batch's references.
const InsertReferencesSQL = `INSERT INTO transaction_references (ledger_id, reference, transaction_id)
			SELECT $1, u.ref, u.tx FROM unnest($2::text[], $3::uuid[]) AS u(ref, tx)`

// InsertKeysSQL stores a batch's idempotency outcomes.
const InsertKeysSQL = `INSERT INTO idempotency_keys (ledger_id, key, request_hash, status, transaction_id, problem, created_at, expires_at)
		SELECT $1, u.key, u.hash, u.status, u.tx, u.problem::json, $2, $3
		FROM unnest($4::text[], $5::bytea[], $6::smallint[], $7::uuid[], $8::text[]) AS u(key, hash, status, tx, problem)`

// InsertTransactionsSQL inserts a small batch's transactions.
const InsertTransactionsSQL = `INSERT INTO transactions (id, ledger_id, sequence, status, postings, metadata, reference, created_at, expires_at, pending_id, reverses)
		SELECT u.id, $1, u.seq, u.status, u.postings::json, u.metadata::json, u.reference, $2, u.expires_at, u.pending_id, u.reverses
		FROM unnest($3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::uuid[], $11::uuid[])
			AS u(id, seq, status, postings, metadata, reference, expires_at, pending_id, reverses)`

// InsertEntriesSQL inserts a small batch's entries.
const InsertEntriesSQL = `INSERT INTO entries (transaction_id, ledger_id, account_id, sequence, posting_index, amount, pending, posted_after,
			pending_debits_after, pending_credits_after, version, created_at)
		SELECT u.tx, $1, u.account, u.seq, u.idx, u.amount, u.pending, u.after, nullif(u.pd, 0), nullif(u.pc, 0), u.version, $2
		FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::smallint[], $7::bigint[], $8::bool[], $9::bigint[], $10::bigint[],
			$11::bigint[], $12::bigint[])
			AS u(tx, account, seq, idx, amount, pending, after, version, pd, pc)`

// CheckpointAccountsSQL writes checkpoint rows, each only over an older state.
// $7 is the smallest transaction id of the commit's month: the states it
// writes are the newest there are, so any newer entry belongs to a later
// commit, whose transaction ids are at or above it (entries_from, see
// newestEntrySQL). One column more in a row the update rewrites anyway.
const CheckpointAccountsSQL = `UPDATE accounts a SET posted = u.posted, pending_debits = u.pd, pending_credits = u.pc, version = u.version,
		entries_from = $7
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(ledger_id, id, posted, pd, pc, version)
		WHERE a.ledger_id = u.ledger_id AND a.id = u.id AND a.version < u.version`
