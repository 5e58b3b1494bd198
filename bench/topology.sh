#!/usr/bin/env bash
# bench/topology.sh — the scaled-out figure next to the single-node ones:
# scripts/topology.sh (PostgreSQL primary with the bench's settings, a
# streaming replica, PgBouncer, Redis, three `ledgerd serve` nodes, HAProxy)
# on this machine, then `ledgerd loadtest` through HAProxy: the single
# workload (BENCH_CLIENTS, default 64) and the batch workload
# (BENCH_BATCH_CLIENTS × 1,000). Two rows, scenarios topology-single and
# topology-batch, with the same run's pgbench and hello references. The
# RSS column is node 1's; the CPU in the notes counts the three nodes as
# ledgerd. scripts/topology.sh's TOPOLOGY_DB and TOPOLOGY_BALANCE pass
# through, and the notes name both. With the default
# TOPOLOGY_BALANCE=roundrobin each load's one ledger is written by all
# three nodes in turn; with ledger by one node (the one its name hashes to).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BATCH_CLIENTS="${BENCH_BATCH_CLIENTS:-8}"
bench_init topology
TOPO_DIR="$WORK/topology"
topology_down() { TOPOLOGY_DIR="$TOPO_DIR" "$ROOT/scripts/topology.sh" down >/dev/null 2>&1 || true; }
# bench_cleanup reports the script's exit status: keep it across the down.
trap '_rc=$?; topology_down; (exit $_rc); bench_cleanup' EXIT
# PostgreSQL runs as the postgres user under a root-owned temporary directory.
((EUID == 0)) && chmod 755 "$WORK"

TOPOLOGY_DIR="$TOPO_DIR" PG_BINDIR="$PG_BINDIR" LEDGERD_BIN="$LEDGERD_BIN" TOPOLOGY_PG_SETTINGS="${PG_SETTINGS[*]} ${BENCH_PG_SETTINGS:-}" \
	LEDGERD_RATE_LIMIT=0 LEDGERD_ACCESS_LOG=false "$ROOT/scripts/topology.sh" up | sed 's/^/  /'
# shellcheck disable=SC1091
source "$TOPO_DIR/env"
PG_PORT="${DATABASE_PRIMARY_URL##*127.0.0.1:}"
PG_PORT="${PG_PORT%%/*}"
PG_PID="$(head -n 1 "$TOPO_DIR/primary/postmaster.pid")"
ln -sfn "$TOPO_DIR/primary" "$WORK/pgdata" # where warm_wal looks
ADMIN_KEY="$LEDGERD_ADMIN_KEY"
API_URL="$LEDGERD_URL"
NODE1="${NODE_URLS%% *}"
NODE1_PORT="${NODE1##*:}"
DEBUG_URL="http://127.0.0.1:$((NODE1_PORT + 1))"
LEDGERD_PID="$(awk '$1 == "node1" {print $2}' "$TOPO_DIR/pids")"
# The "ledgerd" CPU of the notes is the three nodes' together: with the
# writes balanced by ledger, one node (not known in advance) does most of
# the work. lib.sh's proc_ticks, kept as lib_proc_ticks, still counts
# every other process.
NODE_PIDS="$(awk '$1 ~ /^node/ {print $2}' "$TOPO_DIR/pids")"
eval "$(declare -f proc_ticks | sed '1s/^proc_ticks/lib_proc_ticks/')"
proc_ticks() {
	if [[ "$1" != "$LEDGERD_PID" ]]; then
		lib_proc_ticks "$1"
		return
	fi
	local p t total=0
	for p in $NODE_PIDS; do
		t="$(lib_proc_ticks "$p")"
		((t < 0)) || total=$((total + t))
	done
	echo "$total"
}
TOPO_NOTE="3 nodes behind HAProxy (writes $([[ "${TOPOLOGY_BALANCE:-roundrobin}" == ledger ]] && echo "by ledger, reads round-robin" || echo round-robin): TOPOLOGY_BALANCE=${TOPOLOGY_BALANCE:-roundrobin}), nodes' database $(sed -E 's#postgres://[^@]*@##; s#\?.*##' <<<"$DATABASE_URL")$([[ "$DATABASE_URL" == "$DATABASE_PRIMARY_URL" ]] && echo ' (the primary: TOPOLOGY_DB=primary, or PgBouncer refused the nodes)'), replica streaming, Redis $([[ -n "$REDIS_URL" ]] && echo on || echo off)"

ref_pgbench
ref_hello "$BENCH_CLIENTS"

SCENARIO=topology-single
run_load topology-single --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
read_rss
append_row "$(fmt_int "$FIGURE_TPS") transfers/s" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" "$(spec_verdict single "$FIGURE_TPS")" \
	"$TOPO_NOTE; $BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts; $(latency_note topology-single); $(outcome_note topology-single); ledgerd = the 3 nodes, RSS node 1; $CPU_NOTE"

SCENARIO=topology-batch
run_load topology-batch --workload batch --batch-size 1000 --clients "$BATCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
read_rss
append_row "$(fmt_int "$FIGURE_TPS") transfers/s" "$(ratio "$FIGURE_TPS" "$PGBENCH_TPS")" "$(spec_verdict batch "$FIGURE_TPS")" \
	"$TOPO_NOTE; $BATCH_CLIENTS clients × 1,000 per request, $BENCH_ACCOUNTS accounts; request $(latency_note topology-batch); $(outcome_note topology-batch); ledgerd = the 3 nodes, RSS node 1; $CPU_NOTE"
metrics_snapshot
LEDGERD_PID=""
profile_report
topology_down
