-- +goose Up
-- The chainer's hashes leave audit_log (docs/audit.md §How it is stored):
-- each chaining step writes one row here, the hashes of the entries it
-- chained, instead of rewriting every entry's row. audit_log becomes
-- insert-only, and a chained entry costs 32 bytes in a block rather than a
-- new row version, two hex columns and a new primary-key entry.
CREATE TABLE audit_hashes (
    ledger_id      bigint NOT NULL,
    last_position  bigint NOT NULL,
    first_position bigint NOT NULL,
    -- The hash the block's first entry follows (its prev_hash).
    prev           bytea NOT NULL,
    -- The block's entries (positions are global, so a ledger's are not
    -- contiguous) and their SHA-256 hashes, 32 bytes each, in that order.
    positions      bigint[] NOT NULL,
    hashes         bytea NOT NULL,
    PRIMARY KEY (ledger_id, last_position),
    CHECK (length(hashes) = 32 * cardinality(positions) AND length(prev) = 32)
);

INSERT INTO audit_hashes (ledger_id, last_position, first_position, prev, positions, hashes)
SELECT ledger_id, position, position, decode(prev_hash, 'hex'), ARRAY[position], decode(hash, 'hex')
FROM audit_log WHERE hash IS NOT NULL;

ALTER TABLE audit_log DROP COLUMN prev_hash, DROP COLUMN hash;

-- +goose Down
ALTER TABLE audit_log ADD COLUMN prev_hash text, ADD COLUMN hash text;

UPDATE audit_log a SET prev_hash = h.prev, hash = h.hash FROM (
    SELECT b.ledger_id, p.position,
        encode(CASE WHEN p.i = 1 THEN b.prev ELSE substring(b.hashes FROM (p.i::int - 2) * 32 + 1 FOR 32) END, 'hex') AS prev,
        encode(substring(b.hashes FROM (p.i::int - 1) * 32 + 1 FOR 32), 'hex') AS hash
    FROM audit_hashes b, unnest(b.positions) WITH ORDINALITY AS p(position, i)
) h WHERE a.ledger_id = h.ledger_id AND a.position = h.position;

DROP TABLE audit_hashes;
