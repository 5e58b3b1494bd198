-- +goose Up
-- Bytes and index maintenance per transfer are what bound a busy ledger
-- (bench/RESULTS.md: one PostgreSQL backend, most of its time in B-tree
-- inserts). This migration takes one B-tree insert per transaction away
-- and makes two text comparisons cheaper.

-- Time → sequence. created_at never decreases along a ledger's sequence and
-- every transaction of a commit shares the commit's created_at, so one row
-- per commit answers "first sequence at or after t" and "last sequence at
-- or before t" — what transactions_created (one entry per transaction) was
-- kept for.
CREATE TABLE ledger_commits (
    ledger_id      bigint NOT NULL,
    first_sequence bigint NOT NULL,
    last_sequence  bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (ledger_id, first_sequence)
);
CREATE INDEX ledger_commits_created ON ledger_commits (ledger_id, created_at, last_sequence);

-- Commits with the same created_at merge into one row; their sequences are
-- contiguous because created_at never decreases along the sequence.
INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at)
SELECT ledger_id, min(sequence), max(sequence), created_at FROM transactions GROUP BY ledger_id, created_at;

DROP INDEX transactions_created;

-- Idempotency keys and references are opaque: compare them bytewise (C
-- collation) rather than through the database locale's strcoll, which a
-- profile showed in every key and reference probe.
ALTER TABLE idempotency_keys ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE transaction_references ALTER COLUMN reference TYPE text COLLATE "C";

-- +goose Down
ALTER TABLE transaction_references ALTER COLUMN reference TYPE text COLLATE "default";
ALTER TABLE idempotency_keys ALTER COLUMN key TYPE text COLLATE "default";
CREATE INDEX transactions_created ON transactions (ledger_id, created_at, sequence);
DROP TABLE ledger_commits;
