-- +goose Up
-- A balance read takes the account row (a checkpoint) or its newest entry
-- when that is newer (00003). Finding the newest entry cost one backward
-- index probe per monthly partition of entries, so every read grew with
-- the months kept online. Two bounds on the entry's partition key (the
-- transaction id, a UUIDv7 whose first 48 bits are its commit time) let
-- the executor prune the probe to the months that can hold it:
--
--  * below: accounts.entries_from. Every entry newer than the row's
--    version has a transaction id >= it. A checkpoint sets it to the
--    start of its commit's month (the states it writes are the newest
--    there are, so newer entries come from later commits, and commit
--    times never decrease along a ledger's sequence); an account's
--    creation to the start of the month of its ledger's time
--    (last_created_at, which every later commit's time is at or after:
--    a commit's time is the greater of a node's clock and it). Not the
--    database's clock: a node whose clock is behind it commits into the
--    month before across a month boundary. A ledger without commits has
--    the epoch as its time: no bound until the row's first checkpoint.
--    NULL: no bound (rows of older binaries until their next checkpoint).
--  * above: the start of the month after the ledger row's
--    last_created_at, moved by the same commit that writes entries: no
--    visible entry is newer.
--
-- Whole months, because the bounds must only prune: inside the partitions
-- left, no entry may fail them, or the backward probe would walk the
-- account's entries of the month past every one that fails (a bound at
-- the commit's millisecond did exactly that for a current row).
-- With checkpoints every few seconds both bounds fall in the current
-- month: one partition is probed, however many are online.
--
-- Expand only: a nullable column without a default (no rewrite); older
-- binaries leave it as it is, which stays a valid (lower) bound.
ALTER TABLE accounts ADD COLUMN entries_from uuid;

-- txid_floor is the smallest transaction id of time t's millisecond
-- (the layout of postgres/txid.go); txid_month that of the start of t's
-- month plus months (UTC, as the partitions are cut).
-- +goose StatementBegin
CREATE FUNCTION txid_floor(t timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (lpad(to_hex(floor(extract(epoch FROM t) * 1000)::bigint), 12, '0') || '00000000000000000000')::uuid $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION txid_month(t timestamptz, months int) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT txid_floor((date_trunc('month', t AT TIME ZONE 'UTC') + make_interval(months => months)) AT TIME ZONE 'UTC') $$;
-- +goose StatementEnd

-- Rows that are current (no newer entry) get the start of the month of
-- their ledger's last commit: every later commit is at or after it. Rows behind their
-- entries keep NULL and get a bound at their next checkpoint. One pass
-- over the accounts, probing each one's newest entry.
UPDATE accounts a SET entries_from = txid_month(l.last_created_at, 0)
FROM ledgers l
WHERE l.id = a.ledger_id AND coalesce((SELECT e.version FROM entries e WHERE e.ledger_id = a.ledger_id AND e.account_id = a.id
    ORDER BY e.sequence DESC, e.posting_index DESC LIMIT 1), 0) <= a.version;

-- Index maintenance (postgres/maintenance.go): the lease that lets one
-- worker at a time rebuild an index. A row, not an advisory lock:
-- REINDEX CONCURRENTLY runs outside any transaction, so no transaction
-- lock can span it, and through PgBouncer in transaction mode a session
-- advisory lock would stay on whatever server connection took it.
CREATE TABLE maintenance_leases (
    name   text COLLATE "C" PRIMARY KEY,
    holder text,
    until  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO maintenance_leases (name) VALUES ('reindex');

-- The trace context (W3C traceparent) of the sampled requests that
-- created transactions, so that the workers' delivery spans continue the
-- request's trace. A side table rather than a column of transactions:
-- only sampled requests (1 % by default) write a row, so the set-based
-- insert of every transaction stays as it is. The workers delete rows
-- past the delivery log's retention.
CREATE TABLE transaction_traces (
    transaction_id uuid PRIMARY KEY,
    traceparent    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transaction_traces_created ON transaction_traces USING brin (created_at);

-- +goose Down
DROP TABLE transaction_traces;
DROP TABLE maintenance_leases;
DROP FUNCTION txid_month(timestamptz, int), txid_floor(timestamptz);
ALTER TABLE accounts DROP COLUMN entries_from;
