-- load.sql — bulk data for scripts/explain.sh, in the shape the write path
-- produces (postgres/write.go), so that the planner sees what a real ledger
-- holds. Placeholders {{TX}}, {{ACCOUNTS}} and {{DAYS}} are filled in by
-- scripts/explaindb.
--
--  * ledger 1 "bench" (plus 9 small ones for the key and ledger lookups);
--  * {{ACCOUNTS}} accounts acct:000000… with metadata {owner, tier, region};
--    min_balance is null so that random transfers are valid; acct:000000 is
--    hot (a tenth of all transactions credit it);
--  * {{TX}} transactions of one posting each (2 × {{TX}} entries) over the
--    last {{DAYS}} days, sequence 1…{{TX}}, created_at nondecreasing along
--    the sequence, ids UUIDv7 whose first 48 bits are created_at in Unix ms
--    (newTxID), so every row lands in its month's partition;
--  * ledger_commits: one row per distinct created_at with its sequence
--    range, as migration 00002 backfills it. The generated times are all
--    distinct, so every transaction is a commit of its own: the most rows
--    the table can hold for this many transactions (real batches share
--    one created_at and one row);
--  * a reference on every second transaction, metadata on every fourth;
--  * every 100th transaction of the last 30 days is a pending hold expiring
--    30 days after its creation (about 3,300 holds waiting);
--  * idempotency keys for the last 8 days of transactions (7-day TTL: the
--    oldest day is expired and waiting for the maintenance loop);
--  * 50 API keys;
--  * the asynchronous tail as workers that keep up leave it (tail section
--    below): fraud scores, events, webhook endpoints and deliveries, the
--    consumers' cursors one step (500 sequences) behind, and the side
--    tables that retention trims.
SET TIME ZONE 'UTC';
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
SELECT setseed(0.42);

-- Partitions for the months before the ones `ledgerd migrate` created
-- (it creates last month … three ahead), named and bounded like
-- postgres/partitions.go does.
DO $$
DECLARE
    m  timestamptz;
    t  text;
    lo text;
    hi text;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', now() - interval '{{DAYS}} days'), date_trunc('month', now()), interval '1 month') LOOP
        lo := lpad(to_hex(floor(extract(epoch FROM m) * 1000)::bigint), 12, '0') || repeat('0', 20);
        hi := lpad(to_hex(floor(extract(epoch FROM m + interval '1 month') * 1000)::bigint), 12, '0') || repeat('0', 20);
        FOREACH t IN ARRAY ARRAY['transactions', 'entries'] LOOP
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                t || '_' || to_char(m, 'YYYY_MM'), t, lo::uuid, hi::uuid);
        END LOOP;
    END LOOP;
END $$;

INSERT INTO ledgers (name, created_at) VALUES ('bench', now() - interval '{{DAYS}} days' - interval '1 hour');
INSERT INTO ledgers (name) SELECT 'other-' || i FROM generate_series(1, 9) i;

INSERT INTO accounts (ledger_id, id, asset, min_balance, metadata, created_at)
SELECT 1, 'acct:' || lpad(i::text, 6, '0'), 'USD', NULL,
       jsonb_build_object('owner', 'user' || i,
                          'tier', CASE WHEN i % 10 = 0 THEN 'gold' WHEN i % 3 = 0 THEN 'silver' ELSE 'bronze' END,
                          'region', (ARRAY['eu', 'us', 'apac'])[1 + i % 3]),
       now() - interval '{{DAYS}} days' - interval '1 hour'
FROM generate_series(0, {{ACCOUNTS}} - 1) i;

CREATE TEMP TABLE gen AS
SELECT seq, ts,
       (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid AS id,
       'acct:' || lpad(src::text, 6, '0') AS src,
       'acct:' || lpad((CASE WHEN seq % 10 = 0 AND src <> 0 THEN 0 ELSE dst END)::text, 6, '0') AS dst,
       amt,
       seq % 100 = 0 AND ts > now() - interval '30 days' AS pending
FROM (
    SELECT seq, ts, md5(seq::text) AS h, src,
           (src + 1 + floor(random() * ({{ACCOUNTS}} - 1))::int) % {{ACCOUNTS}} AS dst,
           1 + floor(random() * 10000)::bigint AS amt
    FROM (
        SELECT s AS seq,
               date_trunc('microseconds', now() - interval '{{DAYS}} days' + interval '{{DAYS}} days' * (s::float8 / ({{TX}} + 1))) AS ts,
               floor(random() * {{ACCOUNTS}})::int AS src
        FROM generate_series(1, {{TX}}) s
    ) a
) b;

INSERT INTO transactions (id, ledger_id, sequence, status, postings, metadata, reference, created_at, expires_at)
SELECT id, 1, seq, CASE WHEN pending THEN 'pending' ELSE 'posted' END,
       format('[{"source":"%s","destination":"%s","amount":%s,"asset":"USD"}]', src, dst, amt)::json,
       (CASE WHEN seq % 4 = 0 THEN format('{"order":"A-%s"}', seq) ELSE '{}' END)::json,
       CASE WHEN seq % 2 = 0 THEN 'ref-' || seq END,
       ts,
       CASE WHEN pending THEN ts + interval '30 days' END
FROM gen ORDER BY seq;

INSERT INTO ledger_commits (ledger_id, first_sequence, last_sequence, created_at)
SELECT 1, min(seq), max(seq), ts FROM gen GROUP BY ts ORDER BY min(seq);

-- Two legs per posting, source first, with the running posted balance and
-- version after each (what Book.Apply computes; a hold moves no posted
-- balance).
INSERT INTO entries (transaction_id, ledger_id, account_id, sequence, posting_index, amount, pending, posted_after, version, created_at)
SELECT id, 1, account, seq, 0, amount, pending,
       sum(CASE WHEN pending THEN 0 ELSE amount END) OVER w, row_number() OVER w, ts
FROM (SELECT id, seq, ts, pending, src AS account, -amt AS amount FROM gen
      UNION ALL
      SELECT id, seq, ts, pending, dst, amt FROM gen) e
WINDOW w AS (PARTITION BY account ORDER BY seq)
ORDER BY seq, amount;

INSERT INTO transaction_references (ledger_id, reference, transaction_id)
SELECT 1, 'ref-' || seq, id FROM gen WHERE seq % 2 = 0;

-- Every row is current: entries_from is the last commit's month, as a
-- checkpoint would leave it.
UPDATE accounts a SET posted = x.posted, pending_debits = x.pd, pending_credits = x.pc, version = x.n,
    entries_from = txid_month((SELECT max(ts) FROM gen), 0)
FROM (SELECT account_id,
             coalesce(sum(amount) FILTER (WHERE NOT pending), 0) AS posted,
             coalesce(-sum(amount) FILTER (WHERE pending AND amount < 0), 0) AS pd,
             coalesce(sum(amount) FILTER (WHERE pending AND amount > 0), 0) AS pc,
             count(*) AS n
      FROM entries GROUP BY account_id) x
WHERE a.ledger_id = 1 AND a.id = x.account_id;

UPDATE ledgers SET last_sequence = {{TX}}, last_created_at = (SELECT max(ts) FROM gen) WHERE id = 1;

INSERT INTO idempotency_keys (ledger_id, key, request_hash, status, transaction_id, created_at, expires_at)
SELECT 1, 'key-' || seq, sha256(convert_to('key-' || seq, 'UTF8')), 201, id, ts, ts + interval '7 days'
FROM gen WHERE ts > now() - interval '8 days';

INSERT INTO api_keys (id, ledger_id, role, secret_hash)
SELECT substr(md5('k' || i), 1, 16), 1 + i % 10, (ARRAY['read', 'write', 'admin'])[1 + i % 3], sha256(convert_to('s' || i, 'UTF8'))
FROM generate_series(1, 50) i;

-- The tail. Fraud rules on ledger 1 since its start; every posted
-- transaction but the last 500 scored, one in 200 flagged.
INSERT INTO fraud_rules (ledger_id, velocity_max_debits, velocity_window_seconds, large_multiple_of_median, large_min_history,
    new_account_max_age_seconds, new_account_amount_over, freeze_score, start_seq)
VALUES (1, 20, 3600, 10, 20, 86400, 100000, 90, 0);
INSERT INTO transaction_risk (ledger_id, sequence, transaction_id, score, flagged, risk, scored_at)
SELECT 1, seq, id, (seq % 100)::smallint, seq % 200 = 0, format('{"score":%s,"rules":[]}', seq % 100)::json, ts + interval '1 second'
FROM gen WHERE NOT pending AND seq <= {{TX}} - 500 ORDER BY seq;

-- Events rows: an account.created per account, a transaction.flagged per
-- flagged score.
INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
SELECT md5('acct' || i)::uuid, 1, 0, 'account.created', '{}', now() - interval '{{DAYS}} days' - interval '1 hour'
FROM generate_series(0, {{ACCOUNTS}} - 1) i;
INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
SELECT md5('flag' || r.sequence)::uuid, 1, r.sequence, 'transaction.flagged', '{}', r.scored_at
FROM transaction_risk r WHERE r.flagged ORDER BY r.sequence;

-- Consumers' cursors: on ledger 1 a step behind, on the others caught up.
INSERT INTO event_cursors (consumer, ledger_id, seq, ord, last_event_at, updated_at)
SELECT c, 1, {{TX}} - 500, coalesce((SELECT max(ordinal) FROM events WHERE ledger_id = 1 AND after_sequence <= {{TX}} - 500), 0),
       now() - interval '1 second', now() - interval '1 second'
FROM unnest(ARRAY['fraud', 'webhooks', 'monitors']) c;
INSERT INTO event_cursors (consumer, ledger_id, updated_at)
SELECT c, l, now() FROM unnest(ARRAY['webhooks', 'monitors']) c, generate_series(2, 10) l;

-- Webhook endpoints: 20 on ledger 1 (every tenth takes only flags, one is
-- disabled, one answered 410), 2 on each other ledger; each enabled
-- since the ledger's start.
INSERT INTO webhook_endpoints (id, ledger_id, url, event_types, status, secret, gone_at)
SELECT 'we_1_' || lpad(i::text, 2, '0'), 1, 'https://hooks.example/' || i,
       CASE WHEN i % 10 = 0 THEN ARRAY['transaction.flagged'] END,
       CASE WHEN i = 19 THEN 'disabled' ELSE 'enabled' END, 'whsec_' || md5('we' || i),
       CASE WHEN i = 18 THEN now() - interval '1 day' END
FROM generate_series(0, 19) i;
INSERT INTO webhook_endpoints (id, ledger_id, url, status, secret)
SELECT 'we_' || l || '_' || i, l, 'https://hooks.example/' || l || '/' || i, 'enabled', 'whsec_' || md5('we' || l || i)
FROM generate_series(2, 10) l, generate_series(0, 1) i;
INSERT INTO webhook_endpoint_periods (endpoint_id, start_seq, start_ord, end_seq, end_ord)
SELECT id, 0, 0, CASE WHEN status = 'disabled' THEN {{TX}} / 2 END, CASE WHEN status = 'disabled' THEN 0 END
FROM webhook_endpoints;

-- Deliveries of the last 8 days (7 kept: the oldest day waits for
-- retention) to the 17 endpoints of ledger 1 that take every event, up to
-- the relay's cursor. Delivered rows keep no data. One in 1,000 failed;
-- endpoint 1 is slow: its last 2,000 are pending.
INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at, data, status, attempts,
    next_attempt_at, last_status_code, delivered_at, created_at)
SELECT e.id, 'evt_' || g.id, 1, g.seq, 0, CASE WHEN g.pending THEN 'transaction.pending' ELSE 'transaction.posted' END, g.ts,
       CASE WHEN st = 'delivered' THEN NULL ELSE '{}'::json END, st, 1, g.ts + interval '1 second',
       CASE st WHEN 'delivered' THEN 200 WHEN 'failed' THEN 500 END,
       CASE WHEN st = 'delivered' THEN g.ts + interval '1 second' END, g.ts + interval '1 second'
FROM gen g
CROSS JOIN webhook_endpoints e
CROSS JOIN LATERAL (SELECT CASE WHEN e.id = 'we_1_01' AND g.seq > {{TX}} - 2500 THEN 'pending'
                                WHEN (g.seq + length(e.id)) % 1000 = 0 THEN 'failed' ELSE 'delivered' END AS st) s
WHERE e.ledger_id = 1 AND e.event_types IS NULL AND e.status = 'enabled' AND e.gone_at IS NULL
  AND g.ts > now() - interval '8 days' AND g.seq <= {{TX}} - 500
ORDER BY g.seq, e.id;

-- Side tables that retention trims, spread over the {{DAYS}} days: dead
-- letters, traces of 1 % of the transactions, monitor e-mails, and an
-- audit entry per 10 transactions, chained but the last 100.
INSERT INTO dead_letters (ledger_id, idempotency_key, request, reason, created_at)
SELECT 1, 'dl-' || seq, '{}', 'write batch: example', ts FROM gen WHERE seq % 200 = 3 ORDER BY seq;
INSERT INTO transaction_traces (transaction_id, traceparent, created_at)
SELECT id, '00-' || md5(id::text) || '-' || substr(md5(seq::text), 1, 16) || '-01', ts FROM gen WHERE seq % 100 = 5 ORDER BY seq;
INSERT INTO emails (ledger_id, monitor_id, event_id, recipients, subject, body, status, attempts, sent_at, created_at)
SELECT 1, 'mon_1', md5('mail' || seq)::uuid, ARRAY['ops@example.com'], 'monitor', 'body',
       CASE WHEN seq % 3000 = 0 THEN 'failed' ELSE 'sent' END, 1, ts, ts FROM gen WHERE seq % 300 = 0 ORDER BY seq;
INSERT INTO audit_log (ledger_id, at, status, actor, request_id, action, target)
SELECT 1, ts, 200, 'key_1', 'req-' || seq, 'POST /v1/ledgers/bench/accounts', 'acct'
FROM gen WHERE seq % 10 = 0 ORDER BY seq;
INSERT INTO audit_chains (ledger_id, position, hash)
SELECT 1, max(position) - 100, md5('chain') FROM audit_log WHERE ledger_id = 1;
-- The chainer's blocks (one per step of 1,000 entries) up to the head.
INSERT INTO audit_hashes (ledger_id, last_position, first_position, prev, positions, hashes)
SELECT 1, max(position), min(position), decode(repeat('00', 32), 'hex'), array_agg(position ORDER BY position),
       string_agg(sha256(position::text::bytea), ''::bytea ORDER BY position)
FROM (SELECT position, (row_number() OVER (ORDER BY position) - 1) / 1000 AS blk FROM audit_log
      WHERE ledger_id = 1 AND position <= (SELECT position FROM audit_chains WHERE ledger_id = 1)) x
GROUP BY blk;

DROP TABLE gen;
