#!/usr/bin/env bash
# bench/rss.sh — target "rss" (bench/RESULTS.md#targets): server memory at
# full load. One ledgerd takes the single-transfer load of single.sh (64
# clients) and the batch load of batch.sh (BENCH_BATCH_CLIENTS × 1,000 per
# request) at the same time, on two ledgers. Figure: the server's peak
# resident set, VmHWM from /proc/<pid>/status at the end of the run (every
# other scenario records its own in the "ledgerd RSS" column too).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BATCH_CLIENTS="${BENCH_BATCH_CLIENTS:-8}"
bench_init rss
scenario_start "$BENCH_CLIENTS"
LT_PIDS=()
loadtest_start single --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
loadtest_start batch --workload batch --batch-size 1000 --clients "$BATCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
wait_setup single "${LT_PIDS[0]}"
wait_setup batch "${LT_PIDS[1]}"
profile_during_run
loadtest_wait single "${LT_PIDS[0]}"
loadtest_wait batch "${LT_PIDS[1]}"
scenario_end

single_tps="$(report_field single '.throughput_transfers_per_second | floor')"
batch_tps="$(report_field batch '.throughput_transfers_per_second | floor')"
FIGURE_TPS=$((single_tps + batch_tps))
append_row "$RSS_MIB MiB peak RSS" "—" "$(spec_verdict rss "$RSS_MIB")" \
	"load: $(fmt_int "$single_tps") single + $(fmt_int "$batch_tps") batched transfers/s ($BENCH_CLIENTS + $BATCH_CLIENTS clients); $(outcome_note single); batch $(outcome_note batch); $CPU_NOTE"
