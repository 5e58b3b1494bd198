-- +goose Up
-- The ledger's system of record. Conventions:
--  * ids that clients choose are text COLLATE "C" so that listing order is
--    bytewise and prefix scans are index range scans;
--  * transactions and entries are partitioned by month on the transaction
--    id, a UUIDv7 whose first 48 bits are the creation time in ms, so a
--    lookup by id prunes to one partition and old months can be detached
--    and archived whole;
--  * per-ledger uniqueness (references, idempotency keys) lives in
--    unpartitioned tables, because a unique constraint on a partitioned
--    table must include the partition key.

CREATE TABLE ledgers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text COLLATE "C" NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The ordering lock: every write to a ledger's transactions takes this
    -- row FOR UPDATE, assigns the next sequence numbers and moves it on.
    last_sequence   bigint NOT NULL DEFAULT 0,
    -- Moves whenever an account's row changes outside a batch (PATCH), so
    -- that a batch writer knows its cached accounts are stale.
    accounts_epoch  bigint NOT NULL DEFAULT 0,
    last_created_at timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00'
);

CREATE TABLE api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    ledger_id   bigint NOT NULL REFERENCES ledgers (id),
    role        text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    -- SHA-256 of the secret. Secrets are 256-bit random, so a fast hash is
    -- enough: there is nothing to brute-force.
    secret_hash bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_ledger ON api_keys (ledger_id, id);

CREATE TABLE accounts (
    ledger_id       bigint NOT NULL REFERENCES ledgers (id),
    id              text COLLATE "C" NOT NULL,
    asset           text NOT NULL,
    min_balance     bigint,
    metadata        jsonb NOT NULL DEFAULT '{}',
    posted          bigint NOT NULL DEFAULT 0,
    pending_debits  bigint NOT NULL DEFAULT 0,
    pending_credits bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ledger_id, id)
) WITH (fillfactor = 80); -- room for HOT updates of the balance columns
CREATE INDEX accounts_metadata ON accounts USING gin (metadata jsonb_path_ops);

CREATE TABLE transactions (
    id          uuid NOT NULL,
    ledger_id   bigint NOT NULL,
    sequence    bigint NOT NULL,
    status      text NOT NULL,
    -- postings and metadata are immutable documents written once and served
    -- as they are: json keeps the text verbatim, so reads cost no re-encode.
    postings    json NOT NULL,
    metadata    json,
    reference   text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    pending_id  uuid,
    resolved_by uuid,
    reverses    uuid,
    reversed_by uuid,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX transactions_sequence ON transactions (ledger_id, sequence);
CREATE INDEX transactions_created ON transactions (ledger_id, created_at, sequence);
-- Holds waiting for their deadline: small, because resolved holds leave it.
CREATE INDEX transactions_expiry ON transactions (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;

-- One row per posting leg (two per posting): the account's side of it with
-- the running posted balance after it. Serves "transactions of an account",
-- and later statements and balance history, without summing at read time.
CREATE TABLE entries (
    transaction_id uuid NOT NULL,
    ledger_id      bigint NOT NULL,
    account_id     text COLLATE "C" NOT NULL,
    sequence       bigint NOT NULL,
    posting_index  smallint NOT NULL,
    amount         bigint NOT NULL, -- signed: + credit, - debit
    pending        boolean NOT NULL,
    posted_after   bigint NOT NULL,
    version        bigint NOT NULL,
    created_at     timestamptz NOT NULL
) PARTITION BY RANGE (transaction_id);
CREATE INDEX entries_account ON entries (ledger_id, account_id, sequence, posting_index);

CREATE TABLE transaction_references (
    ledger_id      bigint NOT NULL,
    reference      text NOT NULL,
    transaction_id uuid NOT NULL,
    PRIMARY KEY (ledger_id, reference)
);

CREATE TABLE idempotency_keys (
    ledger_id      bigint NOT NULL,
    key            text NOT NULL,
    request_hash   bytea NOT NULL,
    status         smallint NOT NULL,
    -- what a success replays: the transaction (or account) as it is now
    transaction_id uuid,
    account_id     text COLLATE "C",
    -- what a stored business rejection replays
    problem        json,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (ledger_id, key)
);
-- Expiry scans by time; rows arrive in expiry order, so a BRIN index costs
-- next to nothing per insert where a B-tree would cost a second random
-- index insert per request.
CREATE INDEX idempotency_keys_expiry ON idempotency_keys USING brin (expires_at);

-- Items that failed on their own after a batch rolled back for a reason the
-- in-memory checks missed. For diagnosis only: never replayed.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_id       bigint NOT NULL,
    idempotency_key text,
    request         json NOT NULL,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP TABLE dead_letters, idempotency_keys, transaction_references, entries,
    transactions, accounts, api_keys, ledgers;
