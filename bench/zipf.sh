#!/usr/bin/env bash
# bench/zipf.sh — target "zipf" (bench/RESULTS.md#targets): single transfers
# as in single.sh (64 clients, closed loop, 10k accounts) with both accounts
# of each transfer drawn from a Zipf distribution, s = 1.1 (account 0
# hottest). Figure: Zipf transfers/s as a percentage of the uniform figure.
# Under run-all the uniform figure is single.sh's of the same run; run
# alone, this script first measures a uniform run itself on the same server
# (a fresh ledger), then the Zipf one.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init zipf
uniform="" uniform_src=""
if [[ -n "${BENCH_RUN_DIR:-}" && -f "$BENCH_RUN_DIR/single.json" ]]; then
	uniform="$(jq -r '.transfers_per_second' "$BENCH_RUN_DIR/single.json")"
	uniform_src="single.sh of this run"
	log "uniform figure from $uniform_src: $uniform transfers/s"
fi

scenario_start "$BENCH_CLIENTS"
if [[ -z "$uniform" ]]; then
	run_load uniform --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
	uniform="$FIGURE_TPS"
	uniform_src="uniform run on the same server just before"
fi
run_load zipf --workload transfer --zipf 1.1 --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
scenario_end

((uniform > 0)) || die "uniform figure is $uniform"
pct="$(awk -v z="$FIGURE_TPS" -v u="$uniform" 'BEGIN {printf "%.0f", 100 * z / u}')"
log "Zipf $FIGURE_TPS / uniform $uniform transfers/s = $pct %"
append_row "$pct % of uniform ($(fmt_int "$FIGURE_TPS") vs $(fmt_int "$uniform") transfers/s)" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" \
	"$(spec_verdict zipf "$pct")" \
	"uniform: $uniform_src; $BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts, s = 1.1; $(latency_note zipf); $(outcome_note zipf); $CPU_NOTE"
