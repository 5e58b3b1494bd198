-- +goose Up
-- Events that are not transactions (account.created now; account.frozen,
-- account.unfrozen, transaction.flagged, monitor.triggered later). A
-- transaction's event is its row in the log, which is gap-free and ordered
-- already; these rows take their place in the same order at
-- (after_sequence, ordinal): after_sequence is the ledger's last_sequence
-- read under the ledger's ordering lock in the transaction that makes the
-- change, ordinal is drawn by the INSERT after that lock is taken. Both
-- grow in commit order (docs/api.md §Events).
CREATE TABLE events (
    id             uuid PRIMARY KEY,
    ledger_id      bigint NOT NULL REFERENCES ledgers (id),
    after_sequence bigint NOT NULL,
    ordinal        bigint GENERATED ALWAYS AS IDENTITY,
    type           text NOT NULL,
    -- The resource as it was committed, rendered once and served as is.
    data           json NOT NULL,
    created_at     timestamptz NOT NULL
);
-- Tailing: a range scan in event order from a reader's position.
CREATE UNIQUE INDEX events_position ON events (ledger_id, after_sequence, ordinal);

-- +goose Down
DROP TABLE events;
