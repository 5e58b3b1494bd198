-- +goose Up
-- A key's own rate limit (docs/api.md §API keys). NULL in both columns is
-- the node's default (LEDGERD_RATE_LIMIT, LEDGERD_RATE_BURST). The rate
-- is exact to 0.001/s, the resolution the shared limiter counts in.
-- Nullable columns without a default add no table rewrite; the check
-- reads api_keys once, a table of a few rows per ledger.
ALTER TABLE api_keys
    ADD COLUMN rate_limit_per_second numeric(10, 3),
    ADD COLUMN rate_limit_burst integer,
    ADD CONSTRAINT api_keys_rate_limit CHECK (
        (rate_limit_per_second IS NULL AND rate_limit_burst IS NULL)
        OR (rate_limit_per_second > 0 AND rate_limit_burst >= 1));

-- +goose Down
ALTER TABLE api_keys DROP COLUMN rate_limit_per_second, DROP COLUMN rate_limit_burst;
