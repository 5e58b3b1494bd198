-- +goose Up
-- The audit log (docs/audit.md). position is drawn by the INSERT, and
-- every writer of a ledger's entries holds that ledger's ordering lock
-- (its ledgers row) when it inserts: positions therefore grow in commit
-- order within a ledger, and a chainer that chains the committed entries
-- in position order never sees a smaller position commit later. No
-- foreign key: the batch writer inserts these rows in its commit, and
-- the ledger is known to exist there.
CREATE TABLE audit_log (
    ledger_id  bigint NOT NULL,
    position   bigint GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    status     smallint NOT NULL,
    actor      text NOT NULL,
    request_id text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    -- Set by the chainer, hex; NULL until then.
    prev_hash  text,
    hash       text,
    PRIMARY KEY (ledger_id, position)
);

-- Each ledger's chain head: the last chained position and its hash. The
-- chainer locks the row (SKIP LOCKED), so one chainer per ledger at a time.
CREATE TABLE audit_chains (
    ledger_id bigint PRIMARY KEY REFERENCES ledgers (id),
    position  bigint NOT NULL,
    hash      text NOT NULL
);

-- +goose Down
DROP TABLE audit_chains;
DROP TABLE audit_log;
