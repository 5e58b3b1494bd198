#!/usr/bin/env bash
# bench/tail.sh — the standard loads with the asynchronous tail on
# (bench/README.md#tail): `ledgerd serve` and one `ledgerd worker` beside
# it on the same machine (the worker at its default niceness, 10, so that
# it yields the CPU to the request path under a burst; with
# BENCH_TAIL_INPROCESS=1, serve with LEDGERD_WORKERS=true instead, one
# process), one webhook endpoint per load's ledger subscribed to every event
# (registered once the loadtest has set its ledger up), pointing at
# bench/receiver on loopback, which answers 200 at once and records the
# lag of every delivery (arrival − the event's created_at) in an HDR
# histogram. Three loads, as single.sh, batch.sh and latency.sh run them:
#   tail-single  closed loop, BENCH_CLIENTS single transfers
#   tail-batch   closed loop, BENCH_BATCH_CLIENTS × 1,000 per request
#   tail-lag     open loop at BENCH_RATE (2,000/s): figure = webhook lag p99
#                over the events created in the measured part
# Before the lag load, the backlog the first two leave is drained (the drain
# rate, deliveries/s of one worker, goes into the notes); after it, every
# ledger must have received exactly one delivery per event from the
# endpoint's creation on (counted in the database: transactions and events
# rows), or the scenario fails. BENCH_TAIL_DRAIN bounds each wait (default
# 900 s; it also fails when nothing arrives for 60 s). With
# BENCH_TAIL_STATEMENTS=1, PostgreSQL runs pg_stat_statements and the
# statements' time of each phase (the two closed loops, the drain, the lag
# load) goes to bench/out/tail-PHASE-COMMIT.statements: the database's
# profile of the tail beside the write path's.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE="${BENCH_RATE:-2000}"
BATCH_CLIENTS="${BENCH_BATCH_CLIENTS:-8}"
DRAIN_LIMIT="${BENCH_TAIL_DRAIN:-900}"
LEDGERS=(bench-tail-single bench-tail-batch bench-tail-lag)
bench_init tail
RECV_BIN="$BENCH_OUT/bin/receiver"
(cd "$ROOT" && go build -o "$RECV_BIN" ./bench/receiver)

# receiver_start: bench/receiver on a free loopback port; sets RECV_URL.
receiver_start() {
	serve_start receiver "$RECV_BIN" "$WORK/receiver.log"
	RECV_PID="$SERVE_PID"
	RECV_URL="http://$SERVE_ADDR"
	log "receiver pid $RECV_PID on $RECV_URL"
}

# register_endpoint NAME: an endpoint on ledger bench-NAME for every event
# type, at $RECV_URL/hook/bench-NAME.
register_endpoint() {
	local ledger="bench-$1"
	curl -fsS -o /dev/null --max-time 5 --retry 20 --retry-delay 1 -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
		-d "{\"url\": \"$RECV_URL/hook/$ledger\"}" "$API_URL/v1/ledgers/$ledger/webhooks" ||
		die "registering the endpoint of $ledger failed"
	log "endpoint registered on $ledger"
	# Everything else of the tail on too: fraud rules (every rule on, the
	# velocity limit above what the load's uniform choice of accounts
	# reaches, so that nothing is frozen mid-load) and balance monitors on
	# ten accounts (audit chaining is always on).
	curl -fsS -o /dev/null --max-time 5 --retry 20 --retry-delay 1 -X PUT -H "Authorization: Bearer $ADMIN_KEY" \
		-H 'Content-Type: application/json' -d '{"velocity": {"max_debits": 1000, "window_seconds": 60},
			"large_amount": {"multiple_of_median": 10, "min_history": 5},
			"new_account": {"max_age_seconds": 86400, "amount_over": 100000}, "freeze_score": 80}' \
		"$API_URL/v1/ledgers/$ledger/fraud-rules" || die "setting the fraud rules of $ledger failed"
	local i
	for i in 0 1 2 3 4 5 6 7 8 9; do
		curl -fsS -o /dev/null --max-time 5 --retry 20 --retry-delay 1 -H "Authorization: Bearer $ADMIN_KEY" \
			-H 'Content-Type: application/json' \
			-d "{\"account\": \"acct:00000$i\", \"condition\": {\"field\": \"available\", \"operator\": \"<\", \"value\": 0}}" \
			"$API_URL/v1/ledgers/$ledger/monitors" || die "creating a monitor on $ledger failed"
	done
	log "fraud rules and 10 monitors on $ledger"
}

# tail_load NAME LOADTEST-ARGS...: run_load with the endpoint registered
# once the loadtest has set up its ledger (its 20,000 setup events are no
# part of the load), at the start of the warmup; the lag histogram of that
# ledger counts only events created in the measured part.
tail_load() {
	local name="$1"
	shift
	LT_PIDS=()
	loadtest_start "$name" "$@"
	wait_setup "$name" "${LT_PIDS[0]}"
	register_endpoint "$name"
	curl -fsS -o /dev/null -X POST "$RECV_URL/window?path=/hook/bench-$name&from=$(($(date +%s) + LOAD_WARMUP_S))" ||
		die "receiver: window not set"
	local w0
	w0="$(worker_cpu)"
	pace_sample_start
	profile_during_run "$name"
	loadtest_wait "$name" "${LT_PIDS[0]}"
	pace_sample_end
	[[ -z "$WORKER_PID" ]] || CPU_NOTE="$CPU_NOTE; worker $(awk -v a="$w0" -v b="$(worker_cpu)" 'BEGIN {printf "%.1f", b - a}') CPU-s over the load"
	FIGURE_TPS="$(report_field "$name" '.throughput_transfers_per_second | floor')"
}

# worker_start: `ledgerd worker` against the same database (unless the
# tail runs inside serve); sets WORKER_PID.
WORKER_PID=""
worker_start() {
	[[ -n "${BENCH_TAIL_INPROCESS:-}" ]] && return
	local wlog="$WORK/worker.log"
	LEDGERD_WORKER_DEBUG_ADDR=127.0.0.1:0 "${SPAWN[@]}" "$LEDGERD_BIN" worker >"$wlog" 2>&1 &
	WORKER_PID=$!
	track "$WORKER_PID" worker
	sleep 0.5
	alive "$WORKER_PID" || die "ledgerd worker exited: $(tail -n 5 "$wlog")"
	WORKER_DEBUG="$(grep -o 'debug listener.*' "$wlog" | grep -o '127\.0\.0\.1:[0-9]*' | head -n 1 || true)"
	log "worker pid $WORKER_PID (niceness $(ps -o ni= -p "$WORKER_PID" | tr -d ' ')), metrics on ${WORKER_DEBUG:-none}"
}

# pace_sample_start / pace_sample_end: what the worker's pacer saw during
# a load (job/pace.go), sampled from its /metrics twice a second: the
# mean factor its loops rested by and the mean transactions in flight it
# read from the API; pace_sample_end appends them to CPU_NOTE.
PACE_PID=""
pace_sample_start() {
	[[ -n "${WORKER_DEBUG:-}" ]] || return 0
	: >"$WORK/pace.samples"
	(
		for ((i = 0; i < 1200; i++)); do
			curl -fsS --max-time 1 "http://$WORKER_DEBUG/metrics" 2>/dev/null |
				awk '/^ledgerd_tail_pace_factor / { f = $2 } /^ledgerd_tail_api_inflight_transactions / { n = $2 }
					END { if (f != "") print f, n }' >>"$WORK/pace.samples" || true
			sleep 0.5
		done
	) &
	PACE_PID=$!
	track "$PACE_PID" pace-sampler
}
pace_sample_end() {
	[[ -n "$PACE_PID" ]] || return 0
	kill "$PACE_PID" 2>/dev/null || true
	wait "$PACE_PID" 2>/dev/null || true
	PACE_PID=""
	CPU_NOTE="$CPU_NOTE; $(awk '{ f += $1; n += $2; c++; if ($1 >= 32) top++ }
		END { if (c) printf "pacer: factor mean %.1f (at 32 in %.0f%% of %d samples), API in flight mean %.0f", f / c, 100 * top / c, c, n / c
			else print "pacer: no samples" }' "$WORK/pace.samples")"
}

# worker_cpu: the worker's CPU seconds so far (0 when the tail runs in serve).
worker_cpu() {
	[[ -n "$WORKER_PID" ]] || {
		echo 0
		return
	}
	awk -v t="$(proc_ticks "$WORKER_PID")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}'
}

# expected LEDGER: events of the ledger from its endpoint's creation on.
expected() {
	psql_q ledgerd -c "SELECT (SELECT count(*) FROM transactions t WHERE t.ledger_id = l.id AND t.sequence > p.start_seq)
		+ (SELECT count(*) FROM events e WHERE e.ledger_id = l.id AND (e.after_sequence, e.ordinal) > (p.start_seq, p.start_ord))
		FROM ledgers l JOIN webhook_endpoints w ON w.ledger_id = l.id JOIN webhook_endpoint_periods p ON p.endpoint_id = w.id
		WHERE l.name = '$1'"
}

# received LEDGER FIELD: the receiver's count for that ledger's endpoint.
received() {
	curl -fsS --max-time 10 "$RECV_URL/stats" | jq -r --arg p "/hook/$1" ".[\$p].$2 // 0"
}

# drain LEDGER...: wait until each ledger's endpoint got every event
# (bounded); sets DRAIN_NOTE with the rate it came at.
drain() {
	local l want=0 got=0 last=-1 since t0 t n
	t0="$(date +%s.%N)"
	n=0
	for l in "$@"; do
		n=$((n + $(received "$l" distinct)))
	done
	since="$(date +%s)"
	cpu_window_start
	for ((;;)); do
		want=0 got=0
		for l in "$@"; do
			want=$((want + $(expected "$l")))
			got=$((got + $(received "$l" distinct)))
		done
		((got >= want)) && break
		t="$(date +%s)"
		if ((got != last)); then
			last=$got
			since=$t
		fi
		((t - since < 60)) || die "tail: $got of $want events delivered to $*, nothing more for 60 s"
		(($(awk -v a="$t0" -v b="$t" 'BEGIN {print int(b - a)}') < DRAIN_LIMIT)) ||
			die "tail: $got of $want events delivered to $* after ${DRAIN_LIMIT}s"
		sleep 1
	done
	cpu_window_end
	DRAIN_NOTE="$(awk -v g=$((got - n)) -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {
		s = b - a; if (s < 1) s = 1; printf "backlog of %d drained in %.0f s (%.0f deliveries/s)", g, s, g / s }') (${CPU_NOTE/loadtest 0.00, /})"
	log "tail: $want events delivered to $*; $DRAIN_NOTE"
}

# settle: wait (bounded by DRAIN_LIMIT) until the rest of the tail has
# caught up too — every transaction scored, every audit entry chained —
# so that the next load does not share the machine with a backlog; sets
# SETTLE_NOTE with how long that took.
settle() {
	local t0 left
	t0="$(date +%s)"
	for ((;;)); do
		left="$(psql_q ledgerd -c "SELECT coalesce((SELECT sum(l.last_sequence - c.seq) FROM event_cursors c
			JOIN ledgers l ON l.id = c.ledger_id WHERE c.consumer = 'fraud'), 0)
			+ (SELECT count(*) FROM audit_log a LEFT JOIN audit_chains c ON c.ledger_id = a.ledger_id
			WHERE a.position > coalesce(c.position, 0))")"
		((left == 0)) && break
		(($(date +%s) - t0 < DRAIN_LIMIT)) || die "tail: $left transactions unscored or audit entries unchained after ${DRAIN_LIMIT}s"
		sleep 1
	done
	SETTLE_NOTE="fraud scoring and audit chaining caught up $(($(date +%s) - t0)) s after the webhooks"
	log "tail: $SETTLE_NOTE"
}

# lag_note LEDGER: the receiver's lag figures of that ledger.
lag_note() {
	curl -fsS --max-time 10 "$RECV_URL/stats" | jq -r --arg p "/hook/$1" \
		'.[$p] | "webhook lag p50 \(.lag_ms.p50 | round) ms, p99 \(.lag_ms.p99 | round) ms, max \(.lag_ms.max | round) ms over \(.lag_ms.count) deliveries"'
}

# statements PHASE: with BENCH_TAIL_STATEMENTS, the statements' share of
# the database's time since the last call (the top 30 by total time), to
# $BENCH_OUT/tail-PHASE-$COMMIT.statements; then resets the counters.
statements() {
	[[ -n "${BENCH_TAIL_STATEMENTS:-}" ]] || return 0
	local f="$BENCH_OUT/tail-$1-$COMMIT.statements"
	psql_q ledgerd -F $'\t' -c "SELECT round(total_exec_time)::bigint AS ms, calls, rows,
		round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,
		regexp_replace(left(query, 160), '\s+', ' ', 'g')
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 30" >"$f"
	psql_q ledgerd -c "SELECT pg_stat_statements_reset()" >/dev/null
	log "statements of $1 in $f"
}

# row NAME FIGURE RATIO VERDICT NOTES: a row under the name NAME.
row() {
	local keep="$SCENARIO"
	SCENARIO="$1"
	append_row "$2" "$3" "$4" "$5"
	SCENARIO="$keep"
}

[[ -z "${BENCH_TAIL_STATEMENTS:-}" ]] || BENCH_PG_SETTINGS="${BENCH_PG_SETTINGS:-} shared_preload_libraries=pg_stat_statements"
pg_start
ref_pgbench
ref_hello "$BENCH_CLIENTS"
receiver_start
export LEDGERD_WEBHOOK_ALLOW_PRIVATE=true
[[ -z "${BENCH_TAIL_INPROCESS:-}" ]] || export LEDGERD_WORKERS=true
ledgerd_start
worker_start
[[ -z "${BENCH_TAIL_STATEMENTS:-}" ]] || psql_q ledgerd -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
statements setup

tail_load tail-single --workload transfer --clients "$BENCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
SINGLE_TPS="$FIGURE_TPS" SINGLE_CPU="$CPU_NOTE"
statements single
tail_load tail-batch --workload batch --batch-size 1000 --clients "$BATCH_CLIENTS" --accounts "$BENCH_ACCOUNTS"
BATCH_TPS="$FIGURE_TPS" BATCH_CPU="$CPU_NOTE"
statements batch
drain bench-tail-single bench-tail-batch
settle
statements drain
SINGLE_LAG="$(lag_note bench-tail-single)" BATCH_LAG="$(lag_note bench-tail-batch)"
BACKLOG_NOTE="$DRAIN_NOTE"
tail_load tail-lag --workload transfer --mode open --rate "$RATE" --accounts "$BENCH_ACCOUNTS"
LAG_TPS="$FIGURE_TPS" LAG_CPU="$CPU_NOTE"
drain "${LEDGERS[@]}"
statements lag
LAG_P99="$(received bench-tail-lag 'lag_ms.p99 | . * 10 | round / 10')"
LAG_NOTE="$(lag_note bench-tail-lag)"
FRAUD_NOTE="$(psql_q ledgerd -c "SELECT 'fraud scoring: ' || count(*) || ' transactions scored, ' || count(*) FILTER (WHERE r.flagged)
	|| ' flagged, backlog at the end ' || coalesce((SELECT sum(l.last_sequence - c.seq) FROM event_cursors c JOIN ledgers l ON l.id = c.ledger_id
		WHERE c.consumer = 'fraud'), 0) FROM transaction_risk r")"
log "$FRAUD_NOTE"
dups=0
for l in "${LEDGERS[@]}"; do
	dups=$((dups + $(received "$l" requests) - $(received "$l" distinct)))
done
scenario_end

# bare KIND TPS: "NN % of the bare figure" when the same run measured it
# (run-all: single.sh, batch.sh before this).
bare() {
	local f="${BENCH_RUN_DIR:-}/$1.json" b
	[[ -n "${BENCH_RUN_DIR:-}" && -f "$f" ]] || return 0
	b="$(jq -r '.transfers_per_second' "$f")"
	awk -v t="$2" -v b="$b" -v k="$1" 'BEGIN { p = 100 * t / b
		printf "%.0f %% of bare %s (%d/s, same run): %s; ", p, k, b, (p >= 80) ? "≥ 80 % met" : "BELOW 80 %" }'
}

if [[ -n "${BENCH_TAIL_INPROCESS:-}" ]]; then
	how="LEDGERD_WORKERS=true in serve"
else
	how="ledgerd worker beside serve, niceness 10"
fi
common="tail on ($how, fraud rules and 10 monitors, one endpoint per ledger for every event, receiver on loopback); every event delivered ($dups repeated)"
row tail-single "$(fmt_int "$SINGLE_TPS") transfers/s" "$(ratio "$SINGLE_TPS" "$PGBENCH_TPS")" "$(spec_verdict single "$SINGLE_TPS")" \
	"$(bare single "$SINGLE_TPS")$common; $BENCH_CLIENTS clients, $BENCH_ACCOUNTS accounts; $(latency_note tail-single); $SINGLE_LAG (the tail falls behind a closed loop); $(outcome_note tail-single); $SINGLE_CPU"
row tail-batch "$(fmt_int "$BATCH_TPS") transfers/s" "$(ratio "$BATCH_TPS" "$PGBENCH_TPS")" "$(spec_verdict batch "$BATCH_TPS")" \
	"$(bare batch "$BATCH_TPS")$common; $BATCH_CLIENTS clients × 1,000 per request; request $(latency_note tail-batch); $BATCH_LAG; after single and batch, $BACKLOG_NOTE, $SETTLE_NOTE; $(outcome_note tail-batch); $BATCH_CPU"
lag_verdict="$(awk -v v="$LAG_P99" 'BEGIN { print (v <= 1000) ? "lag target met (p99 ≤ 1 s)" : "LAG TARGET MISSED (p99 > 1 s)" }')"
p99="$(report_field tail-lag '.latency_ms.p99 * 10 | round / 10')"
row tail-lag "webhook lag p99 $LAG_P99 ms at $(fmt_int "$RATE")/s offered" "—" "$lag_verdict; API p99 $p99 ms: $(spec_verdict p99 "$p99")" \
	"$common; $LAG_NOTE (events created in the measured part); $FRAUD_NOTE; achieved $(fmt_int "$LAG_TPS") transfers/s; API $(latency_note tail-lag); $(outcome_note tail-lag); $LAG_CPU"
if [[ -n "${BENCH_RUN_DIR:-}" ]]; then
	cp "$BENCH_RUN_DIR/tail-lag.json" "$BENCH_RUN_DIR/tail.json"
fi
