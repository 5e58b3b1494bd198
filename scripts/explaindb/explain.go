package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

var stmtSeq int

// explain prepares q as a named statement and runs EXPLAIN (ANALYZE,
// BUFFERS) EXECUTE with the given plan_cache_mode, twice (the first run
// warms the cache). Writes run in a transaction that is rolled back.
func explain(ctx context.Context, conn *pgx.Conn, q query, args []any, mode string) (string, error) {
	stmtSeq++
	name := fmt.Sprintf("q%d", stmtSeq)
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		return "", err
	}
	if _, err := conn.Prepare(ctx, name, q.sql); err != nil {
		return "", err
	}
	defer conn.Deallocate(context.Background(), name)
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	stmt := "EXPLAIN (ANALYZE, BUFFERS) EXECUTE " + name
	if len(args) > 0 {
		stmt += "(" + strings.Join(ph, ", ") + ")"
	}
	var plan string
	for range 2 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return "", err
		}
		setup := q.setup
		if q.batchTx {
			setup = append(slices.Clone(batchSettings), setup...)
		}
		for _, set := range setup {
			if _, err := tx.Exec(ctx, set); err != nil {
				_ = tx.Rollback(ctx)
				return "", err
			}
		}
		// The simple protocol makes pgx render the arguments as literals
		// in EXECUTE, so the prepared statement sees typed values exactly
		// like the API's bound parameters.
		rows, err := tx.Query(ctx, stmt, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			_ = tx.Rollback(ctx)
			return "", err
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				_ = tx.Rollback(ctx)
				return "", err
			}
			lines = append(lines, l)
		}
		if err := rows.Err(); err != nil {
			_ = tx.Rollback(ctx)
			return "", err
		}
		if err := tx.Rollback(ctx); err != nil {
			return "", err
		}
		plan = strings.Join(lines, "\n")
	}
	return plan, nil
}
