#!/usr/bin/env bash
# bench/traced.sh — the cost of tracing: single transfers as in single.sh
# (64 clients, closed loop, 10k accounts) with OpenTelemetry tracing on, at
# the default sampling ratio (LEDGERD_TRACE_SAMPLE_RATIO, 1 %), exporting
# over OTLP/HTTP to a sink that keeps nothing (bench/hello's /v1/traces), so
# that the node pays the whole cost of tracing (sampling decisions, spans,
# links, batching, export) and no collector has to be installed. Figure:
# the traced figure as a percentage below the untraced one; the goal is a
# cost of at most 5 %. Runs of one scenario vary by several percent on this
# box (more than the cost measured), so the two are measured alternately
# on one PostgreSQL, each load on a server started for it: untraced,
# traced, traced, untraced (ABBA, so that a drift over the four — the
# database growing, the machine's other load — falls on both alike), and
# the figure compares the sums.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init traced
pg_start
ref_pgbench
ref_hello "$BENCH_CLIENTS"

# The OTLP sink: bench/hello on a free loopback port, kept for the run.
serve_start otlp-sink "$HELLO_BIN" "$WORK/sink.log"
sink="$SERVE_ADDR"

# one_load NAME TRACED: a server (tracing on when TRACED is 1), one load,
# the server stopped; adds the figure to PLAIN or TRACED.
PLAIN=0 TRACED=0 FIGS=""
one_load() {
	if [[ "$2" == 1 ]]; then
		export OTEL_EXPORTER_OTLP_ENDPOINT="http://$sink"
	else
		unset OTEL_EXPORTER_OTLP_ENDPOINT
	fi
	ledgerd_start
	run_load "$1" --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
	if [[ "$2" == 1 ]]; then
		TRACED=$((TRACED + FIGURE_TPS))
	else
		PLAIN=$((PLAIN + FIGURE_TPS))
	fi
	FIGS="$FIGS $1 $(fmt_int "$FIGURE_TPS")/s,"
	read_rss
	ledgerd_stop
	psql_q postgres -c "DROP DATABASE ledgerd"
}
one_load plain-1 0
one_load traced-1 1
one_load traced-2 1
one_load plain-2 0
profile_report

((PLAIN > 0)) || die "untraced figure is $PLAIN"
cost="$(awk -v t="$TRACED" -v u="$PLAIN" 'BEGIN {printf "%.1f", 100 * (u - t) / u}')"
log "traced $TRACED / untraced $PLAIN transfers/s (two loads each): tracing costs $cost %"
verdict="$(awk -v c="$cost" 'BEGIN { print (c <= 5) ? "goal met (cost ≤ 5 %)" : "GOAL MISSED (cost > 5 %)" }')"
FIGURE_TPS=$((TRACED / 2))
SCENARIO=traced
append_row "cost $cost % ($(fmt_int $((TRACED / 2))) traced vs $(fmt_int $((PLAIN / 2))) untraced transfers/s, means of two)" \
	"$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" "$verdict" \
	"ABBA:${FIGS%,}; OTLP/HTTP to a discarding sink on loopback, sampling ratio ${LEDGERD_TRACE_SAMPLE_RATIO:-default 0.01}; $BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts; traced-2 $(latency_note traced-2); $(outcome_note traced-2); $CPU_NOTE"
