-- +goose Up
-- An account's pending totals after each entry, next to posted_after and
-- version: with them the newest entry of an account holds its whole
-- balance, so the batch writer need not update the account row in every
-- commit (the costliest statement per row of a commit, bench/RESULTS.md).
-- Account rows become checkpoints, written at an interval
-- (LEDGERD_BALANCE_CHECKPOINT); a read takes the row, or the account's
-- newest entry when that is newer (version).
--
-- Expand only: nullable columns without a default, so no table rewrite.
-- NULL means 0 (most entries move no pending total: a narrower row);
-- entries of older binaries (NULL too) are never newer than their
-- account row, which those binaries write in every commit, so they are
-- never read for a balance.
ALTER TABLE entries ADD COLUMN pending_debits_after bigint, ADD COLUMN pending_credits_after bigint;

-- +goose Down
ALTER TABLE entries DROP COLUMN pending_debits_after, DROP COLUMN pending_credits_after;
