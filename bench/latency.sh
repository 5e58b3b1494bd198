#!/usr/bin/env bash
# bench/latency.sh — target "latency" (bench/RESULTS.md#targets): p99
# latency of single transfers at 2,000 transfers/s offered in an open loop
# (constant arrival rate; latency from the intended send time, so a stall is
# not hidden by the generator waiting for it — no coordinated omission), at
# most 512 in flight, 10k accounts. Figure: p99 in ms of the measured part.
# BENCH_RATE changes the rate.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE="${BENCH_RATE:-2000}"
bench_init latency
scenario_start "$BENCH_CLIENTS"
run_load latency --workload transfer --mode open --rate "$RATE" --accounts "$BENCH_ACCOUNTS"
scenario_end

p99="$(report_field latency '.latency_ms.p99 * 10 | round / 10')"
backlog="$(report_field latency '"backlog max \(.backlog.max // 0), \(.backlog.late_starts // 0) late starts"')"
append_row "p99 $p99 ms at $(fmt_int "$RATE")/s offered" "—" "$(spec_verdict p99 "$p99")" \
	"achieved $(fmt_int "$FIGURE_TPS") transfers/s; $(latency_note latency); $backlog; $(outcome_note latency); $CPU_NOTE"
