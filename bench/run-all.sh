#!/usr/bin/env bash
# bench/run-all.sh — `make bench`: every standard scenario of the targets in
# bench/RESULTS.md#targets, one after the other, each with its own
# PostgreSQL and ledgerd (see lib.sh), each appending its row to
# bench/RESULTS.md. With the default 30 s measurements the whole run takes
# about 10 minutes; a scenario that hangs is stopped after a bounded time,
# and the run exits non-zero if any scenario failed (a broken invariant
# included). Run a subset with `bench/run-all.sh single zipf`; shorten with
# BENCH_DURATION=5s. The last two scenarios measure what the
# features after the commit cost against the bare figures of the same run:
# traced.sh (single transfers with tracing on) and tail.sh (the loads with
# the asynchronous tail on: three loads and the drain of their webhook
# backlog, which lengthen the run by several minutes).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(single batch zipf latency rss traced tail)
scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
	scenarios=("${ALL[@]}")
fi
for s in "${scenarios[@]}"; do
	[[ -x "$BENCH_DIR/$s.sh" && " ${ALL[*]} " == *" $s "* ]] || die "unknown scenario $s (want: ${ALL[*]})"
done

if [[ -n "${MAKELEVEL:-}" ]]; then
	export BENCH_RUN_ALL="make bench"
else
	export BENCH_RUN_ALL="bench/run-all.sh${1:+ $*}"
fi
export BENCH_COMMIT="${BENCH_COMMIT:-$(commit_id)}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
export BENCH_RUN_DIR="$BENCH_OUT/run-$stamp"
mkdir -p "$BENCH_RUN_DIR"
exec > >(tee -a "$BENCH_RUN_DIR/run-all.log") 2>&1

log "bench run $stamp: ${scenarios[*]} at commit $BENCH_COMMIT on $(machine_desc)"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
	log "building $LEDGERD_BIN"
	(cd "$ROOT" && go build -o "$LEDGERD_BIN" ./cmd/ledgerd)
	export BENCH_NO_BUILD=1
fi

duration_s="$(dur_seconds "$BENCH_DURATION")"
warmup_s=$(($(dur_seconds "$BENCH_WARMUP") + ${BENCH_PROFILE_SECONDS:-10} + 2))
# Generous bound per scenario: setup, references, two load runs (zipf run
# alone), shutdown.
limit=$((240 + BENCH_PGBENCH_SECONDS + 2 * (duration_s + warmup_s)))
start="$(date +%s)"
failed=()
for s in "${scenarios[@]}"; do
	slimit=$limit
	if [[ "$s" == tail ]]; then
		# Three load runs and two bounded drains (BENCH_TAIL_DRAIN each).
		slimit=$((limit + duration_s + warmup_s + 2 * ${BENCH_TAIL_DRAIN:-900}))
	fi
	log "=== $s (at most ${slimit}s)"
	if timeout --foreground --kill-after=150 "$slimit" "$BENCH_DIR/$s.sh"; then
		:
	else
		rc=$?
		log "=== $s FAILED (exit $rc)"
		failed+=("$s")
	fi
done

log "=== summary ($(($(date +%s) - start)) s, results in $BENCH_RESULTS)"
for s in "${scenarios[@]}"; do
	if [[ -f "$BENCH_RUN_DIR/$s.json" ]]; then
		jq -r '"  \(.scenario | (. + "        ")[:8]) \(.figure)  [\(.verdict)]  RSS \(.rss_mib) MiB, pgbench \(.pgbench_tps) tps, hello \(.hello_rps) req/s"' \
			"$BENCH_RUN_DIR/$s.json"
	else
		echo "  $s: no result"
	fi
done
if ((${#failed[@]})); then
	die "failed scenarios: ${failed[*]}"
fi
