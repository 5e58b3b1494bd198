# shellcheck shell=bash
# bench/lib.sh — functions shared by the bench/ scenario scripts. Source it,
# then call bench_init NAME. Nothing here touches a port or a process that
# the script did not start: PostgreSQL, ledgerd and the reference server
# listen on 127.0.0.1 ports that are free when picked, every process is
# remembered by PID and stopped by PID on exit (the EXIT trap also runs
# after an error or Ctrl-C), and every wait is bounded.
#
# Environment (all optional):
#   BENCH_DURATION        measured part of each load run (default 30s; Ns or Nm)
#   BENCH_WARMUP          load before the measured part, same ledger (default 5s)
#   BENCH_PROFILE_SECONDS server CPU profile length (default 10), taken at the
#                         end of the warmup, which it lengthens: the profiler
#                         itself costs CPU and latency, so it stays out of
#                         the measured part
#   BENCH_PGBENCH_SECONDS length of the pgbench TPC-B reference (default 15)
#   BENCH_HELLO_DURATION  length of the hello-handler reference (default 10s)
#   BENCH_CLIENTS         closed-loop clients of single/zipf/rss (default 64)
#   BENCH_BATCH_CLIENTS   concurrent batch requests of batch/rss (default 8)
#   BENCH_ACCOUNTS        accounts of every ledger (default 10000)
#   BENCH_RATE            offered rate of latency.sh (default 2000/s)
#   BENCH_RESULTS         file that gets the rows (default bench/RESULTS.md;
#                         point it elsewhere for trial runs)
#   BENCH_OUT             logs, profiles, reports (default bench/out)
#   BENCH_PG_SETTINGS     extra PostgreSQL settings, space-separated name=value
#                         (after the defaults below, so they win)
#   BENCH_TMP             parent of the throwaway PostgreSQL data directory
#                         (default $TMPDIR or /tmp; must not be tmpfs)
#   LEDGERD_BIN           the ledgerd binary (default bin/ledgerd, rebuilt
#                         from the work tree unless BENCH_NO_BUILD=1)
#   PG_BINDIR             PostgreSQL server binaries (default the newest
#                         /usr/lib/postgresql/*/bin)
#   LEDGERD_*             passed through to `ledgerd serve` (and recorded in
#                         the row's command), except the ones the bench sets:
#                         LEDGERD_ADDR, LEDGERD_DEBUG_ADDR, LEDGERD_ADMIN_KEY,
#                         LEDGERD_ACCESS_LOG=false, LEDGERD_RATE_LIMIT=0.
#   OTEL_*                passed through too (and recorded): with
#                         OTEL_EXPORTER_OTLP_ENDPOINT set the server traces at
#                         LEDGERD_TRACE_SAMPLE_RATIO (default 0.01), the figure
#                         to compare with the bare one (docs/observability.md).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"

# The knobs a reader needs to reproduce a row: recorded in its command
# column when they differ from the defaults.
BENCH_KNOBS=(BENCH_PG_SETTINGS BENCH_DURATION BENCH_WARMUP BENCH_PROFILE_SECONDS BENCH_PGBENCH_SECONDS BENCH_HELLO_DURATION
	BENCH_BATCH_CLIENTS BENCH_CLIENTS BENCH_ACCOUNTS BENCH_RATE LEDGERD_BIN PG_BINDIR)
BENCH_SET_KNOBS=""
for _k in "${BENCH_KNOBS[@]}"; do
	if [[ -n "${!_k:-}" ]]; then
		BENCH_SET_KNOBS+="$_k=${!_k} "
	fi
done
while IFS='=' read -r _k _; do
	case "$_k" in
	LEDGERD_ADDR | LEDGERD_DEBUG_ADDR | LEDGERD_ADMIN_KEY | LEDGERD_ACCESS_LOG | LEDGERD_RATE_LIMIT | LEDGERD_URL | LEDGERD_BIN) ;;
	LEDGERD_*) BENCH_SET_KNOBS+="$_k=${!_k} " ;;
	OTEL_*) BENCH_SET_KNOBS+="$_k=${!_k} " ;;
	esac
done < <(env)
unset _k

BENCH_DURATION="${BENCH_DURATION:-30s}"
BENCH_WARMUP="${BENCH_WARMUP:-5s}"
BENCH_PROFILE_SECONDS="${BENCH_PROFILE_SECONDS:-10}"
BENCH_PGBENCH_SECONDS="${BENCH_PGBENCH_SECONDS:-15}"
BENCH_HELLO_DURATION="${BENCH_HELLO_DURATION:-10s}"
BENCH_CLIENTS="${BENCH_CLIENTS:-64}"
BENCH_ACCOUNTS="${BENCH_ACCOUNTS:-10000}"
BENCH_RESULTS="${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}"
BENCH_OUT="${BENCH_OUT:-$BENCH_DIR/out}"
BENCH_TMP="${BENCH_TMP:-${TMPDIR:-/tmp}}"
LEDGERD_BIN="${LEDGERD_BIN:-$ROOT/bin/ledgerd}"

# PostgreSQL settings of every scenario (also listed in RESULTS.md): durable
# commits as the targets require (bench/RESULTS.md#targets), memory and WAL
# sized so that no checkpoint is forced during a run of a few minutes.
PG_SETTINGS=(
	fsync=on
	synchronous_commit=on
	full_page_writes=on
	shared_buffers=1GB
	max_wal_size=4GB
	min_wal_size=1GB
	checkpoint_timeout=15min
	max_connections=200
	listen_addresses=127.0.0.1
	unix_socket_directories=
)

# State filled in as the script goes; cleanup stops what is recorded here.
BENCH_PIDS=()  # PIDs we started and have not stopped yet
BENCH_NAMES=() # their names, same index
WORK=""        # throwaway directory (PostgreSQL data, logs of children)
PG_PID=""
PG_PORT=""
LEDGERD_PID=""
SERVE_PID=""  # set by serve_start
SERVE_ADDR=""
API_URL=""
DEBUG_URL=""
ADMIN_KEY=""
PGBENCH_TPS=""
HELLO_RPS=""
HELLO_CLIENTS=""
RSS_MIB=""
CPU_NOTE=""
PROFILES_TO_REPORT=() # profiles to render once the load is over

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
	log "FAILED: $*" >&2
	exit 1
}

# dur_seconds D: whole seconds of a duration like 30s, 2m, 1m30s or 45.
dur_seconds() {
	local d="$1" total=0 n
	if [[ "$d" =~ ^[0-9]+$ ]]; then
		echo "$d"
		return
	fi
	[[ "$d" =~ ^([0-9]+m)?([0-9]+s)?$ && -n "$d" ]] || die "duration $d: want Ns, Nm or NmNs"
	if [[ -n "${BASH_REMATCH[1]}" ]]; then
		n="${BASH_REMATCH[1]%m}"
		total=$((total + 10#$n * 60))
	fi
	if [[ -n "${BASH_REMATCH[2]}" ]]; then
		n="${BASH_REMATCH[2]%s}"
		total=$((total + 10#$n))
	fi
	echo "$total"
}

# commit_id: short HEAD, with -dirty when the work tree differs from it
# (untracked files included: they may be compiled in). RESULTS.md itself is
# ignored, or every row after the first of a run would be "dirty".
commit_id() {
	local c
	c="$(git -C "$ROOT" rev-parse --short=7 HEAD 2>/dev/null || echo unknown)"
	if [[ -n "$(git -C "$ROOT" status --porcelain -- . ':(exclude)bench/RESULTS.md' 2>/dev/null)" ]]; then
		c+="-dirty"
	fi
	echo "$c"
}

# machine_desc: "N cores, M GiB, CPU model".
machine_desc() {
	local cores mem model
	cores="$(nproc)"
	mem="$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
	model="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "${cores} cores, ${mem} GiB, ${model:-unknown CPU}"
}

# bench_init SCENARIO: logging, output names, the throwaway directory and
# the EXIT trap. Sets SCENARIO, COMMIT, OUT_BASE (bench/out/SCENARIO-COMMIT).
bench_init() {
	SCENARIO="$1"
	mkdir -p "$BENCH_OUT"
	COMMIT="${BENCH_COMMIT:-$(commit_id)}"
	OUT_BASE="$BENCH_OUT/$SCENARIO-$COMMIT"
	LOG="$OUT_BASE.log"
	: >"$LOG"
	# Everything the script prints also goes to the log.
	exec > >(tee -a "$LOG") 2>&1
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	DURATION_S="$(dur_seconds "$BENCH_DURATION")"
	WARMUP_S="$(dur_seconds "$BENCH_WARMUP")"
	((DURATION_S >= 2)) || die "BENCH_DURATION=$BENCH_DURATION is too short (at least 2s)"
	PROFILE_S=$((BENCH_PROFILE_SECONDS >= 1 ? BENCH_PROFILE_SECONDS : 1))
	# What the load generator is told: the warmup, then the profile, then
	# 2 s for the profiler's effects to pass, before the measured part.
	LOAD_WARMUP_S=$((WARMUP_S + PROFILE_S + 2))
	if [[ -n "${BENCH_RUN_ALL:-}" ]]; then
		COMMAND="${BENCH_SET_KNOBS}${BENCH_RUN_ALL}"
	else
		COMMAND="${BENCH_SET_KNOBS}bench/$SCENARIO.sh"
	fi
	log "bench $SCENARIO: commit $COMMIT on $(machine_desc)"
	log "measured $BENCH_DURATION after $BENCH_WARMUP warmup and a ${PROFILE_S}s profile; log $LOG"

	deps
	if [[ -z "${PG_BINDIR:-}" ]]; then
		PG_BINDIR="$(find_pg_bindir)" || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (run scripts/ensure-deps.sh, or set PG_BINDIR)"
	fi
	[[ -x "$PG_BINDIR/postgres" && -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pgbench" ]] ||
		die "PG_BINDIR=$PG_BINDIR lacks postgres, initdb or pgbench"
	build

	mkdir -p "$BENCH_TMP"
	sweep_stale
	WORK="$(mktemp -d "$BENCH_TMP/ledgerd-bench.XXXXXX")"
	local fstype
	fstype="$(stat -f -c %T "$WORK")"
	if [[ "$fstype" == tmpfs || "$fstype" == ramfs ]] && [[ -z "${BENCH_ALLOW_TMPFS:-}" ]]; then
		die "$WORK is on $fstype: fsync would cost nothing and the figures would not be durable ones; set BENCH_TMP to a directory on disk"
	fi
	log "PostgreSQL data under $WORK ($fstype)"
}

# sweep_stale: throwaway directories of earlier runs that were killed
# outright (SIGKILL runs no trap; the parent death signal did stop their
# processes): older than an hour and without a live postmaster.
sweep_stale() {
	local d pid
	while IFS= read -r d; do
		pid="$(head -n 1 "$d/pgdata/postmaster.pid" 2>/dev/null || true)"
		if [[ -n "$pid" ]] && alive "$pid"; then
			continue
		fi
		log "removing stale $d"
		rm -rf -- "$d"
	done < <(find "$BENCH_TMP" -maxdepth 1 -type d -name 'ledgerd-bench.*' -mmin +60 2>/dev/null)
}

# deps: the tools the scripts need, installed with the project's own script
# when missing (it changes nothing when they are present).
deps() {
	local missing=()
	command -v jq >/dev/null || missing+=(jq)
	command -v curl >/dev/null || missing+=(curl)
	command -v go >/dev/null || die "go is not on PATH"
	if ! compgen -G "/usr/lib/postgresql/*/bin/pgbench" >/dev/null && [[ -z "${PG_BINDIR:-}" ]]; then
		missing+=(pgbench)
	fi
	if ((${#missing[@]})); then
		"$ROOT/scripts/ensure-deps.sh" "${missing[@]}"
	fi
}

find_pg_bindir() {
	local d
	d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
	[[ -x "$d/postgres" ]] || return 1
	echo "$d"
}

# build: ledgerd from the work tree (unless BENCH_NO_BUILD=1, as run-all
# sets after building once) and the reference handler.
build() {
	if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
		log "building $LEDGERD_BIN"
		(cd "$ROOT" && go build -o "$LEDGERD_BIN" ./cmd/ledgerd)
	fi
	[[ -x "$LEDGERD_BIN" ]] || die "$LEDGERD_BIN missing (make build)"
	HELLO_BIN="$BENCH_OUT/bin/hello"
	(cd "$ROOT" && go build -o "$HELLO_BIN" ./bench/hello)
}

# track PID NAME / untrack PID: the list cleanup stops.
track() {
	BENCH_PIDS+=("$1")
	BENCH_NAMES+=("$2")
}
untrack() {
	local i
	for i in "${!BENCH_PIDS[@]}"; do
		if [[ "${BENCH_PIDS[$i]}" == "$1" ]]; then
			unset 'BENCH_PIDS[i]' 'BENCH_NAMES[i]'
		fi
	done
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local s
	s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	s="${s##*) }"
	[[ "${s:0:1}" != Z ]]
}

# stop_pid PID NAME SIGNAL SECONDS: signal our child PID, wait for it at most
# SECONDS, then SIGKILL it, and reap it.
stop_pid() {
	local pid="$1" name="$2" sig="$3" secs="$4" i
	untrack "$pid"
	if ! alive "$pid"; then
		wait "$pid" 2>/dev/null || true
		return 0
	fi
	kill -s "$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "$name (pid $pid) still running after SIG$sig and ${secs}s: SIGKILL"
		kill -s KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# stop_nonchild PID NAME SIGNAL SECONDS: like stop_pid for a process that
# is not our child (a postmaster behind a forking runuser).
stop_nonchild() {
	local pid="$1" name="$2" sig="$3" secs="$4" i
	untrack "$pid"
	kill -s "$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < secs * 10; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	log "$name (pid $pid) still running after SIG$sig and ${secs}s: SIGQUIT"
	kill -s QUIT "$pid" 2>/dev/null || true
}

bench_cleanup() {
	local rc=$? i j pid f
	trap - EXIT INT TERM
	set +e
	# Newest first: load generators, then ledgerd and hello, PostgreSQL last.
	local idx=("${!BENCH_PIDS[@]}")
	for ((j = ${#idx[@]} - 1; j >= 0; j--)); do
		i="${idx[$j]}"
		pid="${BENCH_PIDS[$i]}"
		case "${BENCH_NAMES[$i]}" in
		postgres) stop_pid "$pid" postgres INT 60 ;; # fast shutdown
		postgres-nonchild) stop_nonchild "$pid" postgres INT 60 ;;
		*) stop_pid "$pid" "${BENCH_NAMES[$i]}" TERM 35 ;;
		esac
	done
	if [[ -n "$WORK" && -d "$WORK" ]]; then
		# Keep the server logs of a failed run next to the bench log.
		if ((rc != 0)); then
			for f in "$WORK"/*.log; do
				[[ -f "$f" ]] && cp "$f" "$OUT_BASE.$(basename "$f")"
			done
		fi
		rm -rf -- "$WORK"
	fi
	if ((rc != 0)); then
		log "bench ${SCENARIO:-?}: FAILED (exit $rc); see ${LOG:-the output above}"
	fi
	exit "$rc"
}

# free_port: a 127.0.0.1 port nothing listens on right now (PostgreSQL cannot
# bind port 0; pg_start retries if another process takes it meanwhile).
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Command prefixes. PostgreSQL refuses to run as root, so as root its
# commands run as the postgres user. Background children also get a parent
# death signal, so that even a script killed with SIGKILL (no trap runs)
# leaves nothing behind: postgres gets SIGINT (fast shutdown), the Go
# programs SIGTERM. setpriv execs, so the $! of a background job started
# through these prefixes is the program's own PID.
AS_PG=()
SPAWN=()
if command -v setpriv >/dev/null; then
	SPAWN=(setpriv --pdeathsig TERM --)
	if ((EUID == 0)); then
		AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
	fi
	SPAWN_PG=(setpriv "${AS_PG[@]:1:3}" --pdeathsig INT --)
elif ((EUID == 0)); then
	AS_PG=(runuser -u postgres --)
	SPAWN_PG=("${AS_PG[@]}") # runuser forks: $! would not be the postmaster; see pg_start
else
	SPAWN_PG=()
fi

# pg_start: a fresh cluster in $WORK/pgdata on a free loopback port; sets
# PG_PORT, PG_PID, PG_URL_BASE.
pg_start() {
	local data="$WORK/pgdata" pglog="$WORK/postgres.log" attempt i args=() s pm
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run PostgreSQL as"
		chmod 755 "$WORK"
	fi
	mkdir -p "$data"
	chmod 700 "$data"
	if ((EUID == 0)); then
		chown postgres: "$data"
	fi
	: >"$pglog"
	chmod 666 "$pglog"
	log "initdb ($PG_BINDIR)"
	if ! "${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >>"$pglog" 2>&1; then
		rm -rf -- "${data:?}"/*
		"${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C >>"$pglog" 2>&1 ||
			die "initdb failed: $(tail -n 5 "$pglog")"
	fi
	for s in "${PG_SETTINGS[@]}" ${BENCH_PG_SETTINGS:-}; do
		args+=(-c "$s")
	done
	for ((attempt = 1; attempt <= 5; attempt++)); do
		PG_PORT="$(free_port)" || die "no free loopback port"
		"${SPAWN_PG[@]}" "$PG_BINDIR/postgres" -D "$data" -c "port=$PG_PORT" "${args[@]}" >>"$pglog" 2>&1 &
		PG_PID=$!
		track "$PG_PID" postgres
		for ((i = 0; i < 600; i++)); do
			if ! alive "$PG_PID"; then
				break
			fi
			if "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 1 2>/dev/null; then
				pm="$(head -n 1 "$data/postmaster.pid")"
				if [[ "$pm" != "$PG_PID" ]]; then
					# Only when a wrapper forked (runuser): stop the postmaster
					# itself, by the PID it wrote.
					log "postmaster pid $pm (wrapper $PG_PID)"
					untrack "$PG_PID"
					PG_PID="$pm"
					track "$PG_PID" postgres-nonchild
				fi
				PG_URL_BASE="postgres://postgres@127.0.0.1:$PG_PORT"
				log "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $NF}') pid $PG_PID on 127.0.0.1:$PG_PORT"
				psql_q postgres -c "SELECT name, setting, unit FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'wal_level', 'max_connections', 'wal_buffers', 'checkpoint_completion_target') ORDER BY name" |
					sed 's/^/  pg setting /'
				return 0
			fi
			sleep 0.1
		done
		stop_pid "$PG_PID" postgres QUIT 10
		if grep -q "could not bind" "$pglog"; then
			log "port $PG_PORT taken meanwhile; retrying"
			: >"$pglog"
			continue
		fi
		die "PostgreSQL did not start: $(tail -n 10 "$pglog")"
	done
	die "PostgreSQL could not bind a free port in 5 attempts"
}

# psql_q DB ARGS...: psql as postgres over loopback TCP, unaligned output.
psql_q() {
	local db="$1"
	shift
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" "$@"
}

# ref_pgbench: pgbench -i -s 10, then TPC-B with 16 clients on 2 threads, on
# the scenario's own PostgreSQL; sets PGBENCH_TPS. The pgbench database is
# dropped and a checkpoint taken afterwards, so the ledgerd run starts clean.
ref_pgbench() {
	local out="$WORK/pgbench.out"
	log "reference: pgbench -i -s 10; pgbench -c 16 -j 2 -T $BENCH_PGBENCH_SECONDS (TPC-B)"
	psql_q postgres -c "CREATE DATABASE pgbench"
	"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -i -s 10 -q pgbench >"$out" 2>&1 ||
		die "pgbench -i failed: $(tail -n 5 "$out")"
	psql_q postgres -c "CHECKPOINT"
	"$PG_BINDIR/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 16 -j 2 -T "$BENCH_PGBENCH_SECONDS" pgbench >"$out" 2>&1 ||
		die "pgbench failed: $(tail -n 5 "$out")"
	sed 's/^/  pgbench | /' "$out" | grep -E 'latency average|tps =|failed' || true
	PGBENCH_TPS="$(awk '/^tps = / {printf "%.0f", $3; exit}' "$out")"
	[[ -n "$PGBENCH_TPS" ]] || die "no tps in the pgbench output: $(tail -n 5 "$out")"
	psql_q postgres -c "DROP DATABASE pgbench"
	psql_q postgres -c "CHECKPOINT"
	log "reference: pgbench TPC-B $PGBENCH_TPS tps"
	warm_wal
}

# warm_wal: a new cluster creates and zero-fills (and fsyncs) every 16 MB WAL
# segment it writes; a server in steady state recycles old segments instead.
# Measured: the batch scenario on a fresh cluster decayed from ~25k to ~16k
# transfers/s as it ran out of segments, and held ~25k once min_wal_size
# worth of segments existed to recycle. So, before measuring, create
# min_wal_size (1 GB = 64 segments) of segments and let a checkpoint make
# them recyclable: the figures are then those of a warmed-up server.
warm_wal() {
	local i
	for ((i = 0; i < 66; i++)); do
		psql_q postgres -c "SELECT pg_switch_wal() FROM (SELECT txid_current()) t" >/dev/null
	done
	psql_q postgres -c "CHECKPOINT"
	log "WAL warmed: $(du -sh "$WORK/pgdata/pg_wal" | cut -f1) of segments to recycle"
}

# serve_start NAME BIN LOG: a server of bench/ (bench/serve: hello,
# receiver) on a free loopback port, tracked as NAME, its output in LOG;
# waits for its "listening on ADDR" line and sets SERVE_PID and SERVE_ADDR.
serve_start() {
	local name="$1" bin="$2" out="$3" i
	SERVE_ADDR=""
	: >"$out" # exists before the child opens it, so that reading it cannot fail
	"${SPAWN[@]}" "$bin" -addr 127.0.0.1:0 >"$out" 2>&1 &
	SERVE_PID=$!
	track "$SERVE_PID" "$name"
	for ((i = 0; i < 100; i++)); do
		SERVE_ADDR="$(awk '/^listening on / {print $3; exit}' "$out")"
		[[ -n "$SERVE_ADDR" ]] && break
		alive "$SERVE_PID" || die "$name exited: $(cat "$out")"
		sleep 0.1
	done
	[[ -n "$SERVE_ADDR" ]] || die "$name did not start listening"
}

# ref_hello CLIENTS: the trivial Go handler under the same load generator
# and the same number of clients; sets HELLO_RPS.
ref_hello() {
	local clients="$1" pid json="$OUT_BASE.hello.json"
	log "reference: bench/hello, ledgerd loadtest --workload get, $clients clients, $BENCH_HELLO_DURATION"
	serve_start hello "$HELLO_BIN" "$WORK/hello.log"
	pid="$SERVE_PID"
	if ! "$LEDGERD_BIN" loadtest --url "http://$SERVE_ADDR" --workload get --path /hello --clients "$clients" \
		--warmup 2s --duration "$BENCH_HELLO_DURATION" --json >"$json" 2>"$WORK/hello-loadtest.err"; then
		die "hello loadtest failed: $(tail -n 5 "$WORK/hello-loadtest.err")"
	fi
	stop_pid "$pid" hello TERM 10
	HELLO_RPS="$(jq -r '.requests_per_second | floor' "$json")"
	HELLO_CLIENTS="$clients"
	log "reference: hello $HELLO_RPS req/s ($clients clients, errors: $(jq -c '.errors' "$json"))"
}

# ledgerd_start: migrate, then serve on free loopback ports; sets
# LEDGERD_PID, API_URL, DEBUG_URL, ADMIN_KEY.
ledgerd_start() {
	local slog="$WORK/ledgerd.log" i addr="" dbg=""
	psql_q postgres -c "CREATE DATABASE ledgerd"
	export DATABASE_URL="$PG_URL_BASE/ledgerd?sslmode=disable"
	"$LEDGERD_BIN" migrate | sed 's/^/  /'
	ADMIN_KEY="bench_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
	: >"$slog"
	LEDGERD_ADDR=127.0.0.1:0 LEDGERD_DEBUG_ADDR=127.0.0.1:0 LEDGERD_ADMIN_KEY="$ADMIN_KEY" \
		LEDGERD_ACCESS_LOG=false LEDGERD_RATE_LIMIT=0 "${SPAWN[@]}" "$LEDGERD_BIN" serve >"$slog" 2>&1 &
	LEDGERD_PID=$!
	track "$LEDGERD_PID" ledgerd
	for ((i = 0; i < 300; i++)); do
		alive "$LEDGERD_PID" || die "ledgerd serve exited: $(tail -n 5 "$slog")"
		addr="$(jq -Rrn '[inputs | fromjson? | select(.msg == "serving") | .addr] | first // empty' "$slog")"
		dbg="$(jq -Rrn '[inputs | fromjson? | select(.msg == "debug listener") | .addr] | first // empty' "$slog")"
		[[ -n "$addr" ]] && break
		sleep 0.1
	done
	[[ -n "$addr" ]] || die "ledgerd serve did not report its address: $(tail -n 5 "$slog")"
	[[ -n "$dbg" ]] || die "ledgerd serve has no debug listener: $(tail -n 5 "$slog")"
	API_URL="http://$addr"
	DEBUG_URL="http://$dbg"
	for ((i = 0; i < 100; i++)); do
		curl -fsS -o /dev/null --max-time 2 "$API_URL/readyz" && break
		sleep 0.1
	done
	curl -fsS -o /dev/null --max-time 2 "$API_URL/readyz" || die "ledgerd is not ready"
	log "ledgerd pid $LEDGERD_PID: API $API_URL, debug $DEBUG_URL${BENCH_SET_KNOBS:+ (env: $BENCH_SET_KNOBS)}"
}

# proc_ticks PID: user+system CPU ticks of one process (-1 when gone).
proc_ticks() {
	local s
	s="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo -1
		return
	}
	s="${s##*) }"
	local -a a
	read -r -a a <<<"$s"
	echo $((a[11] + a[12]))
}

# pg_ticks: CPU ticks of the postmaster and all its children (backends,
# WAL writer, checkpointer...).
pg_ticks() {
	local total f s pid ppid t
	total="$(proc_ticks "$PG_PID")"
	for f in /proc/[0-9]*/stat; do
		s="$(cat "$f" 2>/dev/null)" || continue
		s="${s##*) }"
		read -r _ ppid _ <<<"$s"
		if [[ "$ppid" == "$PG_PID" ]]; then
			pid="${f#/proc/}"
			pid="${pid%/stat}"
			t="$(proc_ticks "$pid")"
			((t < 0)) || total=$((total + t))
		fi
	done
	echo "$total"
}

# sys_ticks: "busy total iowait steal" of the whole machine from /proc/stat.
sys_ticks() {
	awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t, $6, $9; exit}' /proc/stat
}

# lt_ticks PID...: summed CPU ticks of the load generators (-1 if one is gone).
lt_ticks() {
	local p t total=0
	for p in "$@"; do
		t="$(proc_ticks "$p")"
		if ((t < 0)); then
			echo -1
			return
		fi
		total=$((total + t))
	done
	echo "$total"
}

# cpu_window_start LT_PIDS... / cpu_window_end LT_PIDS...: where the CPU
# went between the two calls, in cores (1.00 = one core busy the whole
# window), for ledgerd, PostgreSQL (all its processes), the load
# generators, and the whole machine (whose other tenants show as the
# difference). Sets CPU_NOTE.
cpu_window_start() {
	CPU0_LEDGERD="$(proc_ticks "$LEDGERD_PID")"
	CPU0_PG="$(pg_ticks)"
	CPU0_LT="$(lt_ticks "$@")"
	read -r CPU0_BUSY CPU0_TOTAL CPU0_IOW CPU0_STEAL < <(sys_ticks)
	CPU0_STALL="$(cpu_stall)"
	CPU0_T="$(date +%s.%N)"
}

# cpu_stall: the host's CPU pressure counter (µs in which some runnable
# task waited for a CPU, Linux PSI), or -1 without PSI.
cpu_stall() {
	awk '/^some/ { sub("total=", "", $5); print $5; found = 1 } END { if (!found) print -1 }' /proc/pressure/cpu 2>/dev/null || echo -1
}
cpu_window_end() {
	local hz led pg lt busy total iow steal secs stall
	hz="$(getconf CLK_TCK)"
	stall="$(cpu_stall)"
	led="$(proc_ticks "$LEDGERD_PID")"
	pg="$(pg_ticks)"
	lt="$(lt_ticks "$@")"
	read -r busy total iow steal < <(sys_ticks)
	secs="$(awk -v a="$CPU0_T" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"
	if ((lt < 0 || CPU0_LT < 0)); then
		lt=-1 # a generator ended inside the window: no figure
	else
		lt=$((lt - CPU0_LT))
	fi
	CPU_NOTE="$(awk -v hz="$hz" -v s="$secs" -v l=$((led - CPU0_LEDGERD)) -v p=$((pg - CPU0_PG)) -v t="$lt" \
		-v b=$((busy - CPU0_BUSY)) -v tot=$((total - CPU0_TOTAL)) -v w=$((iow - CPU0_IOW)) -v st=$((steal - CPU0_STEAL)) \
		-v s0="$CPU0_STALL" -v s1="$stall" \
		'BEGIN {
			lt = (t < 0) ? "n/a" : sprintf("%.2f", t / hz / s)
			psi = (s0 < 0 || s1 < 0) ? "" : sprintf(", CPU pressure %.0f%%", (s1 - s0) / 1e4 / s)
			printf "cpu cores: ledgerd %.2f, postgres %.2f, loadtest %s, machine %.2f of %d (iowait %.0f%%, steal %.0f%%%s)",
				l / hz / s, p / hz / s, lt, b / hz / s, tot / hz / s + 0.5, 100 * w / tot, 100 * st / tot, psi
		}')"
	log "$CPU_NOTE (over ${secs%.*}s)"
}

# loadtest_start NAME ARGS...: ledgerd loadtest against our server in the
# background (report to $OUT_BASE.NAME.json, live lines to its .live file);
# appends its PID to LT_PIDS.
LT_PIDS=()
loadtest_start() {
	local name="$1"
	shift
	log "load $name: ledgerd loadtest $* --warmup ${LOAD_WARMUP_S}s --duration $BENCH_DURATION"
	LEDGERD_ADMIN_KEY="$ADMIN_KEY" "${SPAWN[@]}" "$LEDGERD_BIN" loadtest --url "$API_URL" --json --ledger "bench-$name" \
		--warmup "${LOAD_WARMUP_S}s" --duration "$BENCH_DURATION" "$@" >"$OUT_BASE.$name.json" 2>"$OUT_BASE.$name.live" &
	local pid=$!
	track "$pid" "loadtest-$name"
	touch "$OUT_BASE.$name.live"
	LT_PIDS+=("$pid")
}

# wait_setup NAME PID: until that loadtest has set up its ledger (bounded).
wait_setup() {
	local name="$1" pid="$2" i
	for ((i = 0; i < 3000; i++)); do
		grep -q '^setup: ' "$OUT_BASE.$name.live" 2>/dev/null && {
			log "$(grep '^setup: ' "$OUT_BASE.$name.live")"
			return 0
		}
		alive "$pid" || die "loadtest $name exited during setup: $(tail -n 5 "$OUT_BASE.$name.live")"
		sleep 0.1
	done
	die "loadtest $name: setup took more than 300 s"
}

# profile_during_run [NAME]: a CPU profile of the server for PROFILE_S at
# the end of the warmup, then the CPU accounting of up to 10 s of the
# measured part; the profile's top goes into the log once the load is
# over. The profile is taken outside the measured part because it is not
# free: on a slow virtual machine the profiler's signals and stack walks
# raised the latency scenario's per-second p50 from 4–6 to 9–11 ms for
# exactly the profile's 10 s.
profile_during_run() {
	local secs pprof="$OUT_BASE.pprof"
	if [[ -n "${1:-}" && "$1" != "$SCENARIO" ]]; then
		pprof="$OUT_BASE.$1.pprof"
	fi
	local t0
	t0="$(date +%s)"
	sleep "$WARMUP_S"
	log "profiling ledgerd for ${PROFILE_S}s (end of the warmup)"
	if curl -fsS --max-time $((PROFILE_S + 30)) -o "$pprof" "$DEBUG_URL/debug/pprof/profile?seconds=$PROFILE_S"; then
		log "CPU profile: $pprof (go tool pprof -http : $LEDGERD_BIN $pprof)"
		# Rendered by scenario_end, once the load is over: `go tool pprof`
		# takes seconds of CPU, which inside the measured window showed as
		# a latency spike and a dip in throughput of every scenario.
		PROFILES_TO_REPORT+=("$pprof")
	else
		log "WARNING: no CPU profile (curl failed)"
	fi
	# Into the measured part by a second, then account for the CPU.
	local wait=$((t0 + LOAD_WARMUP_S + 1 - $(date +%s)))
	((wait > 0)) && sleep "$wait"
	secs=$((DURATION_S - 3 < 10 ? DURATION_S - 3 : 10))
	((secs >= 1)) || secs=1
	cpu_window_start "${LT_PIDS[@]}"
	sleep "$secs"
	cpu_window_end "${LT_PIDS[@]}"
}

# loadtest_wait NAME PID: wait for a loadtest to end; die unless it passed
# its correctness check. Prints its report.
loadtest_wait() {
	local name="$1" pid="$2" rc=0 json i limit
	json="$OUT_BASE.$name.json"
	# Bounded: the run itself, plus settlement and the check (each request
	# of which has the loadtest's own 10 s timeout).
	limit=$((LOAD_WARMUP_S + DURATION_S + 300))
	for ((i = 0; i < limit * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		stop_pid "$pid" "loadtest-$name" TERM 30
		die "loadtest $name still running ${limit}s after its start"
	fi
	wait "$pid" || rc=$?
	untrack "$pid"
	tail -n 3 "$OUT_BASE.$name.live" | sed "s/^/  $name live | /"
	if ! jq -e . "$json" >/dev/null 2>&1; then
		die "loadtest $name (exit $rc) wrote no report: $(tail -n 5 "$OUT_BASE.$name.live")"
	fi
	jq -r --arg n "$name" '"  \($n): \(.transfers_acknowledged) transfers acknowledged in \(.duration_seconds * 100 | round / 100) s = \(.throughput_transfers_per_second | round)/s, \(.requests_per_second | round) req/s; latency ms p50 \(.latency_ms.p50) p99 \(.latency_ms.p99) p99.9 \(.latency_ms.p99_9) max \(.latency_ms.max); rejected \(.rejected); errors \(.errors); in doubt \(.in_doubt); check \(.check.status)",
		(.check.results[]? | "    check \(if .ok then "ok  " else "FAIL" end) \(.name): \(.detail)")' "$json"
	local status
	status="$(jq -r '.check.status' "$json")"
	[[ "$status" == passed ]] || die "loadtest $name: correctness check $status (exit $rc) — a run that breaks an invariant is a failure"
	((rc == 0)) || die "loadtest $name exited $rc"
}

# metrics_snapshot: /metrics after the run, for batch sizes and pool waits.
metrics_snapshot() {
	curl -fsS --max-time 10 -o "$OUT_BASE.metrics" "$DEBUG_URL/metrics" || log "WARNING: no /metrics snapshot"
}

# read_rss: the server's peak resident set (VmHWM) so far, in MiB.
read_rss() {
	local kb
	kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$LEDGERD_PID/status")"
	RSS_MIB=$(((kb + 1023) / 1024))
	log "ledgerd peak RSS (VmHWM) $RSS_MIB MiB; now $(awk '/^VmRSS:/ {printf "%d MiB", $2 / 1024}' "/proc/$LEDGERD_PID/status")"
}

# report_field NAME JQ: one value from a loadtest report.
report_field() { jq -r "$2" "$OUT_BASE.$1.json"; }

# outcome_note NAME: rejections and errors of a loadtest, for the notes.
outcome_note() {
	jq -r '
		def total: [.[]] | add // 0;
		(.transfers_acknowledged + (.rejected | total) + (.errors | total)) as $all |
		"rejected \(if $all > 0 then ((.rejected | total) * 1000 / $all | round) / 10 else 0 end) %, errors \(if (.errors | length) == 0 then "none" else (.errors | to_entries | map("\(.key)=\(.value)") | join(" ")) end)"' \
		"$OUT_BASE.$1.json"
}

# ledgerd_stop: graceful shutdown, bounded.
ledgerd_stop() {
	[[ -n "$LEDGERD_PID" ]] || return 0
	stop_pid "$LEDGERD_PID" ledgerd TERM 35
}

# spec_verdict KIND VALUE: the goal/floor verdict for a figure (the targets
# of bench/RESULTS.md#targets).
#   throughput-single, throughput-batch: transfers/s (higher is better)
#   zipf: percent of uniform; p99: ms (lower is better); rss: MiB (lower)
spec_verdict() {
	local kind="$1" v="$2" goal floor dir=up
	case "$kind" in
	single) goal=20000 floor=5000 ;;
	batch) goal=100000 floor=25000 ;;
	zipf) goal=95 floor=50 ;;
	p99) goal=5 floor=50 dir=down ;;
	rss) goal=128 floor=512 dir=down ;;
	*) die "spec_verdict: unknown kind $kind" ;;
	esac
	awk -v v="$v" -v g="$goal" -v f="$floor" -v d="$dir" 'BEGIN {
		if (d == "up") { if (v >= g) print "goal met"; else if (v >= f) print "floor met, goal not"; else print "BELOW FLOOR" }
		else           { if (v <= g) print "goal met"; else if (v <= f) print "floor met, goal not"; else print "BELOW FLOOR" }
	}'
}

# fmt_int N: 12345 -> 12,345 (whatever the locale).
fmt_int() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' <<<"$1"; }

# ratio A B: A/B with two decimals and a ×, or — when B is empty or zero.
ratio() {
	awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f×\n", a / b }'
}

# append_row FIGURE RATIO VERDICT NOTES: one line of the RESULTS.md table.
append_row() {
	local figure="$1" rat="$2" verdict="$3" notes="$4" row
	if [[ ! -f "$BENCH_RESULTS" ]]; then
		mkdir -p "$(dirname "$BENCH_RESULTS")"
		{
			echo "# ledgerd benchmark results"
			echo
			echo "| date (UTC) | machine | commit | command | scenario | figure | target | ledgerd RSS | pgbench TPC-B tps | hello req/s | figure ÷ pgbench tps | notes |"
			echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
		} >"$BENCH_RESULTS"
	fi
	row="| $(date -u '+%Y-%m-%d %H:%M') | $(machine_desc) | \`$COMMIT\` | \`$COMMAND\` | $SCENARIO | $figure | $verdict | ${RSS_MIB:-?} MiB | $(fmt_int "${PGBENCH_TPS:-0}") | $(fmt_int "${HELLO_RPS:-0}") @ ${HELLO_CLIENTS:-?} clients | $rat | $notes |"
	echo "$row" >>"$BENCH_RESULTS"
	log "row appended to $BENCH_RESULTS:"
	echo "$row"
	# Machine-readable summary for run-all (and the zipf ratio).
	if [[ -n "${BENCH_RUN_DIR:-}" ]]; then
		jq -n --arg scenario "$SCENARIO" --arg figure "$figure" --arg verdict "$verdict" --arg tps "${FIGURE_TPS:-}" \
			--arg rss "${RSS_MIB:-}" --arg pgbench "${PGBENCH_TPS:-}" --arg hello "${HELLO_RPS:-}" \
			'{scenario: $scenario, figure: $figure, verdict: $verdict, transfers_per_second: $tps, rss_mib: $rss, pgbench_tps: $pgbench, hello_rps: $hello}' \
			>"$BENCH_RUN_DIR/$SCENARIO.json"
	fi
}

# scenario_start CLIENTS: PostgreSQL, the two reference figures (hello with
# CLIENTS clients), then ledgerd on the same PostgreSQL.
scenario_start() {
	pg_start
	ref_pgbench
	ref_hello "$1"
	ledgerd_start
}

# run_load NAME LOADTEST-ARGS...: one measured loadtest with the server
# profiled during it; dies unless its check passed. Sets FIGURE_TPS.
run_load() {
	local name="$1"
	shift
	LT_PIDS=()
	loadtest_start "$name" "$@"
	wait_setup "$name" "${LT_PIDS[0]}"
	profile_during_run "$name"
	loadtest_wait "$name" "${LT_PIDS[0]}"
	FIGURE_TPS="$(report_field "$name" '.throughput_transfers_per_second | floor')"
}

# scenario_end: what is read from the server before it stops, then stop it.
scenario_end() {
	read_rss
	metrics_snapshot
	ledgerd_stop
	profile_report
}

# profile_report: the top of each profile taken during the run, in the log.
profile_report() {
	local pprof
	for pprof in "${PROFILES_TO_REPORT[@]}"; do
		go tool pprof -top -nodecount=30 "$LEDGERD_BIN" "$pprof" 2>/dev/null | sed 's/^/  pprof | /' || log "go tool pprof -top failed"
		go tool pprof -top -cum -nodecount=40 "$LEDGERD_BIN" "$pprof" 2>/dev/null | sed -n '6,$p' | sed 's/^/  pprof cum | /' || true
	done
	PROFILES_TO_REPORT=()
}

# latency_note NAME: "p50 a ms, p99 b ms" of a report.
latency_note() {
	report_field "$1" 'def r: . * 10 | round / 10; "p50 \(.latency_ms.p50 | r) ms, p99 \(.latency_ms.p99 | r) ms, p99.9 \(.latency_ms.p99_9 | r) ms"'
}
