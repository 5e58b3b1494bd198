-- +goose Up
-- Data lifecycle (docs/data-lifecycle.md): months of transactions and
-- entries older than a ledger's retention leave the database for Parquet
-- files in object storage.
--
-- hot_months is the retention policy: a month is archived once it ends at
-- least hot_months whole months before the current one. A constant
-- default adds the column without a table rewrite.
ALTER TABLE ledgers ADD COLUMN hot_months integer NOT NULL DEFAULT 3 CHECK (hot_months BETWEEN 1 AND 1200);

-- One row per ledger and month that has started to leave. The state only
-- moves forward (detaching → written → verified → dropped), and back to
-- restored when an operator re-attaches the month; manifest is the
-- manifest.json of the month's file set once written (row counts,
-- sequence range, checksums), kept here so that reads can find the files
-- and a rerun can check them without listing the bucket.
CREATE TABLE archives (
    ledger_id  bigint NOT NULL REFERENCES ledgers (id),
    month      date NOT NULL CHECK (extract(day FROM month) = 1),
    state      text NOT NULL CHECK (state IN ('detaching', 'written', 'verified', 'dropped', 'restored')),
    first_sequence bigint,
    last_sequence  bigint,
    manifest   jsonb,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ledger_id, month)
);

-- Each account's balance after its last archived entry: where `ledgerd
-- verify` starts recomputing from once earlier entries have left (only
-- the entries after through_sequence are online, or were restored and
-- checked against their files then). Moves only forward.
CREATE TABLE archived_balances (
    ledger_id        bigint NOT NULL,
    account_id       text COLLATE "C" NOT NULL,
    through_sequence bigint NOT NULL,
    posted_after     bigint NOT NULL,
    version          bigint NOT NULL,
    PRIMARY KEY (ledger_id, account_id)
);

-- At most one archiver at a time across all workers: a lease rather than
-- an advisory lock, so that it holds through PgBouncer's transaction
-- pooling and expires by itself when its holder dies.
CREATE TABLE archive_lease (
    id         integer PRIMARY KEY CHECK (id = 1),
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE archive_lease, archived_balances, archives;
ALTER TABLE ledgers DROP COLUMN hot_months;
