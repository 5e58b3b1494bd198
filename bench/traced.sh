#!/usr/bin/env bash
# bench/traced.sh — the cost of tracing: single transfers as in single.sh
# (64 clients, closed loop, 10k accounts) with OpenTelemetry tracing on, at
# the default sampling ratio (LEDGERD_TRACE_SAMPLE_RATIO, 1 %), exporting
# over OTLP/HTTP to a sink that keeps nothing (bench/hello's /v1/traces), so
# that the node pays the whole cost of tracing (sampling decisions, spans,
# links, batching, export) and no collector has to be installed. Figure:
# traced transfers/s as a percentage of the untraced figure; the goal is a
# cost of at most 5 %. Under run-all the untraced figure is single.sh's of
# the same run; run alone, this script first measures an untraced run on its
# own server, then the traced one on a second server over the same database.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init traced
plain="" plain_src=""
if [[ -n "${BENCH_RUN_DIR:-}" && -f "$BENCH_RUN_DIR/single.json" ]]; then
	plain="$(jq -r '.transfers_per_second' "$BENCH_RUN_DIR/single.json")"
	plain_src="single.sh of this run"
	log "untraced figure from $plain_src: $plain transfers/s"
fi

pg_start
ref_pgbench
ref_hello "$BENCH_CLIENTS"

# The OTLP sink: bench/hello on a free loopback port, kept for the run.
serve_start otlp-sink "$HELLO_BIN" "$WORK/sink.log"
sink="$SERVE_ADDR"

if [[ -z "$plain" ]]; then
	ledgerd_start
	run_load plain --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
	plain="$FIGURE_TPS"
	plain_src="untraced run on a server of its own just before, same database"
	ledgerd_stop
	psql_q postgres -c "DROP DATABASE ledgerd"
fi
export OTEL_EXPORTER_OTLP_ENDPOINT="http://$sink"
ratio_set="${LEDGERD_TRACE_SAMPLE_RATIO:-default 0.01}"
ledgerd_start
run_load traced --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
served="$(curl -fsS --max-time 5 "$DEBUG_URL/metrics" | awk '/^ledgerd_http_request_duration_seconds_count/ {n += $2} END {print n + 0}')"
scenario_end

((plain > 0)) || die "untraced figure is $plain"
cost="$(awk -v t="$FIGURE_TPS" -v u="$plain" 'BEGIN {printf "%.1f", 100 * (u - t) / u}')"
log "traced $FIGURE_TPS / untraced $plain transfers/s: tracing costs $cost %"
verdict="$(awk -v c="$cost" 'BEGIN { print (c <= 5) ? "goal met (cost ≤ 5 %)" : "GOAL MISSED (cost > 5 %)" }')"
append_row "$(fmt_int "$FIGURE_TPS") transfers/s traced, cost $cost % of $(fmt_int "$plain")" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" \
	"$verdict" \
	"untraced: $plain_src; OTLP/HTTP to a discarding sink on loopback, sampling ratio $ratio_set, $served requests served; $BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts; $(latency_note traced); $(outcome_note traced); $CPU_NOTE"
