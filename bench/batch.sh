#!/usr/bin/env bash
# bench/batch.sh — target "batch" (bench/RESULTS.md#targets): the batch
# endpoint, 1,000 transfers per non-atomic request (every item with its own
# idempotency key, half with a reference), closed loop with
# BENCH_BATCH_CLIENTS (default 8) concurrent requests over 10k accounts.
# Figure: acknowledged transfers/s.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BATCH_CLIENTS="${BENCH_BATCH_CLIENTS:-8}"
bench_init batch
scenario_start "$BATCH_CLIENTS"
run_load batch --workload batch --batch-size 1000 --clients "$BATCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
scenario_end

append_row "$(fmt_int "$FIGURE_TPS") transfers/s" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" "$(spec_verdict batch "$FIGURE_TPS")" \
	"$BATCH_CLIENTS clients × 1,000 per request, $BENCH_ACCOUNTS accounts; request $(latency_note batch); $(outcome_note batch); $CPU_NOTE"
