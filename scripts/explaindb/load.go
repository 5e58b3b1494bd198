package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// load bulk-loads load.sql with the data set's sizes, VACUUM ANALYZEs,
// and records every table's row estimate (relRows) for the plans' flags.
func load(ctx context.Context, conn *pgx.Conn, nTx, nAcc, days int) error {
	start := time.Now()
	logf("loading %d accounts and %d transactions (%d entries)", nAcc, nTx, 2*nTx)
	sql := strings.NewReplacer("{{TX}}", strconv.Itoa(nTx), "{{ACCOUNTS}}", strconv.Itoa(nAcc), "{{DAYS}}", strconv.Itoa(days)).Replace(loadSQL)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	logf("loaded in %s; VACUUM ANALYZE", time.Since(start).Round(time.Second))
	// Autovacuum never analyzes a partitioned parent: do it explicitly.
	for _, s := range []string{"VACUUM (ANALYZE)", "ANALYZE transactions, entries", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var n float32
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		relRows[name] = float64(n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return nil
}

type dbFacts struct{ version, summary string }

func describe(ctx context.Context, conn *pgx.Conn) (dbFacts, error) {
	var f dbFacts
	var ver string
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&ver); err != nil {
		return f, err
	}
	f.version = strings.Fields(ver)[0]
	var acc, tx, en, commits, refs, keys, parts, risks, events, deliveries, audit int64
	var txSize, enSize string
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM transactions),
		(SELECT count(*) FROM entries), (SELECT count(*) FROM ledger_commits), (SELECT count(*) FROM transaction_references),
		(SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM transaction_risk), (SELECT count(*) FROM events),
		(SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM audit_log),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass),
		pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'transactions'::regclass)),
		pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'entries'::regclass))`).
		Scan(&acc, &tx, &en, &commits, &refs, &keys, &risks, &events, &deliveries, &audit, &parts, &txSize, &enSize)
	if err != nil {
		return f, err
	}
	f.summary = fmt.Sprintf("%d accounts, %d transactions (%s with indexes), %d entries (%s), %d commits, %d references, "+
		"%d idempotency keys; %d monthly partitions per partitioned table. The workers' tables: %d risk scores, %d events rows, "+
		"%d webhook deliveries, %d audit entries.", acc, tx, txSize, en, enSize, commits, refs, keys, parts, risks, events, deliveries, audit)
	return f, nil
}
