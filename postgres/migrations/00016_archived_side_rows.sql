-- +goose Up
-- References of archived months leave once LEDGERD_RETAIN_REFERENCES has
-- passed (docs/data-lifecycle.md §Retention of the side tables): the
-- retention pass finds a ledger's month of them by transaction id. The
-- ids are UUIDv7, so each ledger's inserts land at the right edge of its
-- part of this index: one cheap B-tree insert per referenced transaction,
-- where a BRIN would widen past use as deleted space is reused.
CREATE INDEX transaction_references_transaction ON transaction_references (ledger_id, transaction_id);

-- +goose Down
DROP INDEX transaction_references_transaction;
