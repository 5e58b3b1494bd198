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
--  * 50 API keys.
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

DROP TABLE gen;
