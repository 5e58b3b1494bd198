#!/usr/bin/env bash
# bench/growth.sh — the growth benchmark (`make bench-growth`; not in
# `make bench`, not in CI): does the latency of the common reads and of a
# transfer stay flat as a ledger grows?
#
# For each size (transactions of one posting each, two entries each) it
# creates a database on the scenario's own PostgreSQL, migrates it, loads
# a ledger "bench" of that size with COPY straight into its monthly
# partitions (bench/growth load: spread evenly over the last 12 months,
# 100,000 accounts, a tenth of the transfers crediting one hot account;
# running balances, versions, commit rows and account checkpoints as the
# write path leaves them) and VACUUM ANALYZEs it. Then it starts one
# `ledgerd serve` per database and measures, one request at a time and
# alternating between the sizes request by request (so that other load on
# the machine falls on every size alike), BENCH_GROWTH_N (default 2,000)
# of each after 200 unmeasured (bench/growth probe):
#   get account, list transactions by account (first page), statement of
#   one month (entries with from/to), balance?at=, post a transfer
# on uniformly drawn accounts. One row per size goes into the "Growth"
# table of bench/RESULTS.md (BENCH_RESULTS), with pg_database_size; the
# last row also gets each p99 as a multiple of the first size's.
#
# Usage: bench/growth.sh [SIZE ...]     default: 1000000 10000000
#        bench/growth.sh 1000000 100000000   (the issue's sizes: every size
#                                             stays loaded until the probe,
#                                             about 75 GB of disk, an hour)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=("$@")
((${#SIZES[@]})) || SIZES=(1000000 10000000)
N="${BENCH_GROWTH_N:-2000}"
bench_init growth
COMMAND="${BENCH_SET_KNOBS}${BENCH_GROWTH_N:+BENCH_GROWTH_N=$N }bench/growth.sh ${SIZES[*]}"
GROWTH_BIN="$BENCH_OUT/bin/growth"
(cd "$ROOT" && go build -o "$GROWTH_BIN" ./bench/growth)
pg_start

# growth_row SIZE BYTES JSON FIRST_JSON: the row of one size.
growth_row() {
	local size="$1" bytes="$2" json="$3" first="$4" cols="" k p99 r
	for k in get_account list_transactions_by_account statement_one_month balance_at post_transfer; do
		p99="$(jq -r ".$k.p99_ms * 100 | round / 100" "$json")"
		r=""
		if [[ -n "$first" && "$first" != "$json" ]]; then
			r=" ($(ratio "$p99" "$(jq -r ".$k.p99_ms * 100 | round / 100" "$first")"))"
		fi
		cols+=" $p99$r |"
	done
	printf '| %s | %s | `%s` | `%s` | %s | %s |%s %s |\n' "$(date -u '+%Y-%m-%d %H:%M')" "$(machine_desc)" "$COMMIT" "$COMMAND" \
		"$(fmt_int "$size")" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }')" "$cols" \
		"p50 $(jq -r '[.get_account, .list_transactions_by_account, .statement_one_month, .balance_at, .post_transfer] | map(.p50_ms * 100 | round / 100 | tostring) | join(" / ")' "$json") ms; rows per answer: list $(jq -r '.list_transactions_by_account.rows_per_answer * 10 | round / 10' "$json"), statement $(jq -r '.statement_one_month.rows_per_answer * 10 | round / 10' "$json"); list with limit=10: p99 $(jq -r '.list_transactions_by_account_limit10.p99_ms * 100 | round / 100' "$json")$([[ -n "$first" && "$first" != "$json" ]] && echo " ($(ratio "$(jq -r '.list_transactions_by_account_limit10.p99_ms * 100 | round / 100' "$json")" "$(jq -r '.list_transactions_by_account_limit10.p99_ms * 100 | round / 100' "$first")"))"), p50 $(jq -r '.list_transactions_by_account_limit10.p50_ms * 100 | round / 100' "$json"); $N of each, one at a time"
}

# insert_row ROW: after the last line of the Growth table.
insert_row() {
	local tmp="$BENCH_RESULTS.tmp"
	grep -q '^## Growth' "$BENCH_RESULTS" || die "$BENCH_RESULTS has no '## Growth' section"
	awk -v row="$1" '
		/^## / { in_g = ($0 ~ /^## Growth/) }
		in_g && /^\|/ { last = NR }
		{ lines[NR] = $0 }
		END {
			for (i = 1; i <= NR; i++) {
				print lines[i]
				if (i == last) print row
			}
		}' "$BENCH_RESULTS" >"$tmp"
	mv "$tmp" "$BENCH_RESULTS"
}

# serve_db DB: `ledgerd serve` on database DB on free loopback ports;
# appends its URL to APIS and its PID to SERVE_PIDS.
serve_db() {
	local db="$1" slog="$WORK/ledgerd-$1.log" i addr="" pid
	: >"$slog"
	DATABASE_URL="$PG_URL_BASE/$db?sslmode=disable" LEDGERD_ADDR=127.0.0.1:0 LEDGERD_DEBUG_ADDR= \
		LEDGERD_ADMIN_KEY="$ADMIN_KEY" LEDGERD_ACCESS_LOG=false LEDGERD_RATE_LIMIT=0 \
		"${SPAWN[@]}" "$LEDGERD_BIN" serve >"$slog" 2>&1 &
	pid=$!
	track "$pid" "ledgerd-$db"
	for ((i = 0; i < 300; i++)); do
		alive "$pid" || die "ledgerd serve on $db exited: $(tail -n 5 "$slog")"
		addr="$(jq -Rrn '[inputs | fromjson? | select(.msg == "serving") | .addr] | first // empty' "$slog")"
		[[ -n "$addr" ]] && break
		sleep 0.1
	done
	[[ -n "$addr" ]] || die "ledgerd serve on $db did not report its address: $(tail -n 5 "$slog")"
	for ((i = 0; i < 100; i++)); do
		curl -fsS -o /dev/null --max-time 2 "http://$addr/readyz" && break
		sleep 0.1
	done
	APIS+=("http://$addr")
	SERVE_PIDS+=("$pid")
	log "ledgerd pid $pid on $db: http://$addr"
}

# Every size is loaded into a database of its own first; then one server
# per database, and the probe alternates between them request by request:
# on a machine shared with other work, load from elsewhere falls on every
# size alike instead of on whichever size happened to run during it.
ADMIN_KEY="bench_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
BYTES=()
for size in "${SIZES[@]}"; do
	db="growth_$size"
	log "size $(fmt_int "$size"): database $db, migrate, load"
	psql_q postgres -c "CREATE DATABASE $db"
	export DATABASE_URL="$PG_URL_BASE/$db?sslmode=disable"
	"$LEDGERD_BIN" migrate | sed 's/^/  /'
	"$GROWTH_BIN" load -url "$DATABASE_URL" -postings "$size" | tail -n 1
	log "VACUUM ANALYZE"
	psql_q "$db" -c "VACUUM ANALYZE"
	psql_q "$db" -c "CHECKPOINT"
	if ((size <= 1000000)); then
		# The generator's data must be what the write path would leave:
		# checked where it is quick (larger sizes come from the same code).
		log "ledgerd verify"
		"$LEDGERD_BIN" verify --ledger bench | sed 's/^/  /'
	fi
	BYTES+=("$(psql_q "$db" -c "SELECT pg_database_size('$db')")")
	log "database size ${BYTES[-1]} bytes"
done
APIS=()
SERVE_PIDS=()
for size in "${SIZES[@]}"; do
	serve_db "growth_$size"
done
json="$OUT_BASE.json"
"$GROWTH_BIN" probe -api "$(IFS=,; echo "${APIS[*]}")" -key "$ADMIN_KEY" -n "$N" >"$json"
for pid in "${SERVE_PIDS[@]}"; do
	stop_pid "$pid" ledgerd TERM 35
done
ROWS=()
for i in "${!SIZES[@]}"; do
	jq ".[$i]" "$json" >"$OUT_BASE.$i.json"
	ROWS+=("$(growth_row "${SIZES[$i]}" "${BYTES[$i]}" "$OUT_BASE.$i.json" "$OUT_BASE.0.json")")
done
for size in "${SIZES[@]}"; do
	psql_q postgres -c "DROP DATABASE growth_$size"
done
for row in "${ROWS[@]}"; do
	insert_row "$row"
	echo "$row"
done
log "rows inserted into the Growth table of $BENCH_RESULTS"
