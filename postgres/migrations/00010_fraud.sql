-- +goose Up
-- Fraud scoring (docs/fraud.md). The workers score a ledger's posted
-- transactions from the log after their commit (consumer 'fraud' in
-- event_cursors), never on the request path.

-- A ledger's rules; no row: every rule off and nothing scored. A rule is on
-- when its columns are set (both or neither, by the checks).
CREATE TABLE fraud_rules (
    ledger_id                   bigint PRIMARY KEY REFERENCES ledgers (id),
    velocity_max_debits         bigint,
    velocity_window_seconds     bigint,
    large_multiple_of_median    bigint,
    large_min_history           bigint,
    new_account_max_age_seconds bigint,
    new_account_amount_over     bigint,
    -- NULL: transactions are scored, none flagged.
    freeze_score                smallint,
    -- The ledger's last sequence under its ordering lock when rules were
    -- first set: scoring starts after it, so older transactions never get
    -- a risk (a read may cache them as they are).
    start_seq                   bigint NOT NULL,
    updated_at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((velocity_max_debits IS NULL) = (velocity_window_seconds IS NULL)),
    CHECK ((large_multiple_of_median IS NULL) = (large_min_history IS NULL)),
    CHECK ((new_account_max_age_seconds IS NULL) = (new_account_amount_over IS NULL))
);

-- Each scored transaction's risk, written once in the step that moves the
-- cursor past it. Its own table rather than a column of transactions: the
-- log's rows stay written once (an UPDATE per transaction would double the
-- log's heap writes and dead tuples). risk is the JSON served as the
-- transaction's "risk" member, rendered once.
CREATE TABLE transaction_risk (
    ledger_id      bigint NOT NULL,
    sequence       bigint NOT NULL,
    transaction_id uuid NOT NULL,
    score          smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    flagged        boolean NOT NULL,
    risk           json NOT NULL,
    scored_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ledger_id, sequence)
);

-- +goose Down
DROP TABLE transaction_risk, fraud_rules;
