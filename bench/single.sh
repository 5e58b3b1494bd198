#!/usr/bin/env bash
# bench/single.sh — target "single" (bench/RESULTS.md#targets): the
# single-transfer API, closed loop, 64 clients, 10k accounts, uniform choice
# (the standard workload: one Idempotency-Key per request, half with a
# reference, 0.5 % deliberate overdrafts). Figure: acknowledged transfers/s
# in the measured part.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init single
scenario_start "$BENCH_CLIENTS"
run_load single --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
scenario_end

append_row "$(fmt_int "$FIGURE_TPS") transfers/s" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" "$(spec_verdict single "$FIGURE_TPS")" \
	"$BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts; $(latency_note single); $(outcome_note single); $CPU_NOTE"
