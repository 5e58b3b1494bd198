-- +goose Up
-- Balance monitors and the e-mail outbox. A monitor is evaluated by the
-- workers from the transaction log (consumer 'monitors' in event_cursors),
-- never on the request path; a crossing writes its monitor.triggered event
-- and its e-mail row in the same transaction that moves the cursor.
CREATE TABLE monitors (
    id            text COLLATE "C" PRIMARY KEY,
    ledger_id     bigint NOT NULL REFERENCES ledgers (id),
    account_id    text COLLATE "C" NOT NULL,
    field         text NOT NULL CHECK (field IN ('available', 'posted')),
    operator      text NOT NULL CHECK (operator IN ('<', '<=', '>', '>=')),
    value         bigint NOT NULL,
    email         text[] NOT NULL DEFAULT '{}',
    description   text NOT NULL DEFAULT '',
    -- The ledger's last sequence under its ordering lock at creation: only
    -- transactions after it are evaluated, so a monitor never triggers on
    -- what was committed before it existed.
    start_seq     bigint NOT NULL,
    -- The last transaction evaluated that touched the account, and whether
    -- the condition held after it (NULL: none yet). Informative: crossings
    -- are decided from each transaction's exact before and after balances.
    evaluated_seq bigint NOT NULL,
    holds         boolean,
    triggers      bigint NOT NULL DEFAULT 0,
    last_triggered_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX monitors_ledger ON monitors (ledger_id, id);

-- E-mails to send, and what became of them. Rendered once when the monitor
-- triggers, so every attempt sends the same message. No foreign key to the
-- monitor: a notification outlives the monitor's deletion.
CREATE TABLE emails (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_id       bigint NOT NULL,
    monitor_id      text COLLATE "C" NOT NULL,
    event_id        uuid NOT NULL UNIQUE,
    recipients      text[] NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- A claim moves it past the lease: a worker killed mid-send leaves the
    -- row due again when the lease runs out.
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'pending';

-- +goose Down
DROP TABLE emails, monitors;
