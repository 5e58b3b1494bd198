-- +goose Up
-- An account's status: a frozen account may be credited but not debited
-- (docs/api.md §Freezing). A constant default adds the column without a
-- table rewrite. Numbered 00007: 00006 is the webhooks table of another
-- branch.
ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active'
    CONSTRAINT accounts_status CHECK (status IN ('active', 'frozen'));

-- +goose Down
ALTER TABLE accounts DROP COLUMN status;
