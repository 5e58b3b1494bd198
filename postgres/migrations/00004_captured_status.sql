-- +goose Up
-- A captured hold's status is 'captured'; the capture transaction stays
-- 'posted'. A captured hold used to be 'posted' as well, so that a reader
-- summing the postings of posted transactions counted every capture twice
-- (the hold's postings and the capture's). Only a hold ever gains
-- resolved_by, so a posted row with one is a captured hold.
--
-- Rolling deploys: a node of an older binary still marks the holds it
-- captures 'posted'; once the last of them is gone, run the UPDATE below
-- again by hand (it is idempotent), or stop them before migrating.
UPDATE transactions SET status = 'captured' WHERE status = 'posted' AND resolved_by IS NOT NULL;

-- +goose Down
UPDATE transactions SET status = 'posted' WHERE status = 'captured';
