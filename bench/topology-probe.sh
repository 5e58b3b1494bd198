#!/usr/bin/env bash
# bench/topology-probe.sh — one short load against a topology that
# scripts/topology.sh has started, with what the bench rows do not show:
# what the primary's backends wait on (pg_stat_activity sampled every
# 100 ms over the measured part) and where the machine's CPU went, per
# process of the topology. For comparing variants (1 node or all behind
# HAProxy, PgBouncer or the primary directly, worker on or off) in
# alternating runs on one topology, so both sides share the machine's load.
#
# Usage: bench/topology-probe.sh TARGET NAME [LOADTEST FLAGS...]
#   TARGET  haproxy | nodeN (one node directly) | a URL
#   NAME    a label; the ledger is probe-NAME-<time>
# Environment: TOPOLOGY_DIR (as for scripts/topology.sh), LEDGERD_BIN,
#   PROBE_WARMUP (default 3s), PROBE_DURATION (default 10s), PG_BINDIR.
# Prints one summary line (transfers/s, p50/p99, CPU cores per process
# group) and the wait-event counts; the loadtest report goes to
# $TOPOLOGY_DIR/probe-NAME.json.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR="${TOPOLOGY_DIR:-${TMPDIR:-/tmp}/ledgerd-topology}"
PG_BINDIR="${PG_BINDIR:-$(find_pg_bindir)}"
WARMUP="${PROBE_WARMUP:-3s}"
DURATION="${PROBE_DURATION:-10s}"
target="$1" name="$2"
shift 2
# shellcheck disable=SC1091
source "$DIR/env"
case "$target" in
haproxy) url="$LEDGERD_URL" ;;
node[0-9]*)
	read -r -a nodes <<<"$NODE_URLS"
	url="${nodes[${target#node} - 1]}"
	;;
*) url="$target" ;;
esac
pport="${DATABASE_PRIMARY_URL##*127.0.0.1:}"
pport="${pport%%/*}"
psqlp() { "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$pport" -U postgres -d ledgerd "$@"; }

ticks() { # pid: utime+stime of the process (lib.sh's proc_ticks), 0 when gone
	local t
	t="$(proc_ticks "$1")"
	echo $((t < 0 ? 0 : t))
}
# group_ticks: "name ticks" per process group of the topology (a
# postmaster counts with its children: backends, walsender, startup).
group_ticks() {
	local name pid f s ppid t
	declare -A sum=()
	declare -A owner=()
	while read -r name pid; do
		owner[$pid]="${name%%[0-9]*}"
		sum[${name%%[0-9]*}]=$((${sum[${name%%[0-9]*}]:-0} + $(ticks "$pid")))
	done <"$DIR/pids"
	for f in /proc/[0-9]*/stat; do
		s="$(cat "$f" 2>/dev/null)" || continue
		s="${s##*) }"
		read -r _ ppid _ <<<"$s"
		if [[ -n "${owner[$ppid]:-}" && "${owner[$ppid]}" == postgres-* ]]; then
			pid="${f#/proc/}"
			pid="${pid%/stat}"
			t="$(ticks "$pid")"
			sum[${owner[$ppid]}]=$((${sum[${owner[$ppid]}]} + t))
		fi
	done
	for name in "${!sum[@]}"; do echo "$name ${sum[$name]}"; done
}

ledger="probe-$name-$(date +%s)"
out="$DIR/probe-$name.json"
LEDGERD_ADMIN_KEY="$LEDGERD_ADMIN_KEY" "$LEDGERD_BIN" loadtest --url "$url" --json --ledger "$ledger" \
	--warmup "$WARMUP" --duration "$DURATION" "$@" >"$out" 2>"$DIR/probe-$name.live" &
lt=$!
for _ in $(seq 3000); do
	grep -q '^setup: ' "$DIR/probe-$name.live" 2>/dev/null && break
	kill -0 "$lt" 2>/dev/null || break
	sleep 0.1
done
w="${WARMUP%s}"
sleep "$((w + 1))"
secs=$(("${DURATION%s}" - 2))
psqlp -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1 || true
g0="$(group_ticks)"
l0="$(ticks "$lt")"
read -r b0 t0 < <(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat)
T0="$(date +%s.%N)"
# One connection samples: \watch re-runs the query every 100 ms.
waits="$DIR/probe-$name.waits"
q="SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || ' ' || coalesce(nullif(application_name, ''), backend_type) || ' ' || split_part(regexp_replace(left(query, 60), '\s+', ' ', 'g'), ' ', 1) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND datname = 'ledgerd'"
printf '%s \\watch 0.1\n' "$q" | timeout "$secs" "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$pport" -U postgres -d ledgerd >"$waits" 2>/dev/null || true
g1="$(group_ticks)"
l1="$(ticks "$lt")"
read -r b1 t1 < <(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat)
T1="$(date +%s.%N)"
wait "$lt" || true
hz="$(getconf CLK_TCK)"
el="$(awk -v a="$T0" -v b="$T1" 'BEGIN {print b - a}')"
cpu="$(join <(sort <<<"$g0") <(sort <<<"$g1") | awk -v hz="$hz" -v s="$el" '{printf "%s %.2f, ", $1, ($3 - $2) / hz / s}')"
cpu+="$(awk -v hz="$hz" -v s="$el" -v a="$l0" -v b="$l1" 'BEGIN {printf "loadtest %.2f, ", (b - a) / hz / s}')"
cpu+="$(awk -v hz="$hz" -v s="$el" -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN {printf "machine %.2f of %.0f", b / hz / s, t / hz / s}')"
samples="$(grep -c . "$waits" || true)"
jq -r --arg n "$name" --arg u "$url" --arg cpu "$cpu" '"\($n) (\($u)): \(.throughput_transfers_per_second | round) transfers/s, \(.requests_per_second | round) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms; check \(.check.status); cpu cores: \($cpu)"' "$out"
echo "  wait events of the primary's active backends, samples every 100 ms over ${secs}s (count / ${secs}0 = mean backends in that state):"
sort "$waits" | uniq -c | sort -rn | head -n 15 | sed 's/^/   /'
if psqlp -c "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'" | grep -q 1; then
	echo "  top statements by total time:"
	psqlp -F ' | ' -c "SELECT calls, round(total_exec_time::numeric, 0) AS ms, round(mean_exec_time::numeric, 3) AS mean_ms, left(regexp_replace(query, '\s+', ' ', 'g'), 70) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8" | sed 's/^/   /'
fi
