-- +goose Up
-- Webhook endpoints, their deliveries (queue and delivery log in one), and
-- the relay's cursors. Events themselves are not copied anywhere: the
-- transaction log (and the events table for the other kinds) is the outbox;
-- a relay tails it per ledger and turns each event into one delivery per
-- matching endpoint.

CREATE TABLE webhook_endpoints (
    id              text COLLATE "C" PRIMARY KEY,
    ledger_id       bigint NOT NULL REFERENCES ledgers (id),
    url             text NOT NULL,
    -- NULL: every event type.
    event_types     text[],
    description     text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('enabled', 'disabled')),
    secret          text NOT NULL,
    -- After a rotation the old secret still signs (second signature) until
    -- previous_until.
    previous_secret text,
    previous_until  timestamptz,
    -- set when the receiver answered 410 (cleared when enabled again):
    -- its deliveries are dead-lettered rather than held
    gone_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_endpoints_ledger ON webhook_endpoints (ledger_id, id);

-- The stretches of the ledger's event order during which an endpoint was
-- enabled: it gets exactly the events at positions in (start, end]. The
-- bounds are the ledger's position read under its ordering lock (SELECT …
-- FROM ledgers … FOR UPDATE) in the transaction that enables or disables
-- the endpoint, so every event is unambiguously before or after the
-- switch, whenever the relay gets to it. end NULL: enabled now.
CREATE TABLE webhook_endpoint_periods (
    endpoint_id text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    start_seq   bigint NOT NULL,
    start_ord   bigint NOT NULL,
    end_seq     bigint,
    end_ord     bigint,
    PRIMARY KEY (endpoint_id, start_seq, start_ord)
);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         text COLLATE "C" NOT NULL,
    ledger_id        bigint NOT NULL,
    -- the event's position in its ledger (sequence, ordinal)
    seq              bigint NOT NULL,
    ord              bigint NOT NULL,
    event_type       text NOT NULL,
    event_created_at timestamptz NOT NULL,
    -- The event's data as committed, rendered once by the relay: the
    -- delivery worker then needs no read of the log per attempt, and every
    -- attempt sends the same bytes.
    data             json NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- set while a worker holds the delivery (its lease); a worker killed
    -- mid-attempt leaves it to expire, and the row is due again then
    locked_until     timestamptz,
    last_status_code integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (endpoint_id, event_id)
);
-- What the claim scans: due deliveries per endpoint.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
-- The delivery log, newest first, and retention of delivered rows.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (delivered_at) WHERE status = 'delivered';
-- Dead letters, counted by the metrics and listed with ?status=failed.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (endpoint_id) WHERE status = 'failed';

-- How far each consumer has read each ledger's events. One row per
-- (consumer, ledger), taken FOR UPDATE SKIP LOCKED by the relay step that
-- advances it, so several workers share the ledgers without reading one
-- twice at the same time.
CREATE TABLE event_cursors (
    consumer  text COLLATE "C" NOT NULL,
    ledger_id bigint NOT NULL REFERENCES ledgers (id),
    seq       bigint NOT NULL DEFAULT 0,
    ord       bigint NOT NULL DEFAULT 0,
    -- commit time of the last event read, for the lag in seconds
    last_event_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, ledger_id)
);

-- +goose Down
DROP TABLE event_cursors, webhook_deliveries, webhook_endpoint_periods, webhook_endpoints;
