-- +goose NO TRANSACTION
-- +goose Up
-- References of archived months leave once LEDGERD_RETAIN_REFERENCES has
-- passed (docs/data-lifecycle.md §Retention of the side tables): the
-- retention pass finds a ledger's month of them by transaction id. The
-- ids are UUIDv7, so each ledger's inserts land at the right edge of its
-- part of this index: one cheap B-tree insert per referenced transaction,
-- where a BRIN would widen past use as deleted space is reused.
-- CONCURRENTLY: the table is as large as the references ever taken, and
-- a plain build would hold writes with a reference for its duration. A
-- build that failed leaves an invalid index, dropped by the rerun.
DROP INDEX CONCURRENTLY IF EXISTS transaction_references_transaction;
CREATE INDEX CONCURRENTLY transaction_references_transaction ON transaction_references (ledger_id, transaction_id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS transaction_references_transaction;
