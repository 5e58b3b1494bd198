-- +goose Up
-- What each API node's write path holds in flight (transactions submitted
-- and not yet answered, averaged over its last 100 ms), so that the tail
-- can yield to a busy request path (docs/design/tail.md). Unlogged: a row
-- is rewritten ten times a second while its node is busy and means nothing
-- a second later, so it is not worth a WAL record; a crash empties the
-- table, which reads as "not busy".
CREATE UNLOGGED TABLE api_load (
    node     text PRIMARY KEY,
    at       timestamptz NOT NULL,
    inflight real NOT NULL
) WITH (fillfactor = 50);

-- +goose Down
DROP TABLE api_load;
