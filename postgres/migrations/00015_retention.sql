-- +goose Up
-- Retention of the side tables (docs/data-lifecycle.md). Each deletion
-- finds its old rows by time. These rows arrive in time order, so a BRIN
-- index costs next to nothing per insert and still lets a pass that finds
-- nothing to delete read a few block ranges instead of the table.
CREATE INDEX events_created ON events USING brin (created_at);
CREATE INDEX dead_letters_created ON dead_letters USING brin (created_at);
CREATE INDEX transaction_risk_scored ON transaction_risk USING brin (scored_at);
-- Dead-lettered deliveries and finished e-mails are few and leave their
-- state out of time order: small partial B-trees.
CREATE INDEX webhook_deliveries_failed_created ON webhook_deliveries (created_at) WHERE status = 'failed';
CREATE INDEX emails_done_created ON emails (created_at) WHERE status <> 'pending';

-- Where each ledger's audit chain starts once retention has deleted its
-- oldest entries: the position and hash of the last entry deleted, so
-- that the first entry kept links to it and `ledgerd verify` starts from
-- it instead of the zero hash. Retention deletes only a prefix of the
-- chained entries, and moves this row in the same transaction.
CREATE TABLE audit_checkpoints (
    ledger_id  bigint PRIMARY KEY REFERENCES ledgers (id),
    position   bigint NOT NULL,
    hash       text NOT NULL,
    at         timestamptz NOT NULL,
    deleted    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP TABLE audit_checkpoints;
DROP INDEX emails_done_created, webhook_deliveries_failed_created, transaction_risk_scored,
    dead_letters_created, events_created;
