#!/usr/bin/env bash
# scripts/topology.sh — the scaled-out deployment on one machine, on
# loopback: a PostgreSQL primary, a streaming replica made with
# pg_basebackup, PgBouncer (transaction mode) in front of the primary, three
# `ledgerd serve` nodes and HAProxy in front of them (each ledger's writes
# to one node, reads round-robin) with health checks on /readyz; Redis for
# the shared rate limits when redis-server is installed. See
# docs/scaling.md.
#
# Usage:
#   scripts/topology.sh up      start it all (prints the URLs and the admin key)
#   scripts/topology.sh down    stop it all, by the PIDs `up` recorded
#   scripts/topology.sh status  what runs
#   scripts/topology.sh haproxy-config BIND ledger|roundrobin ADDR...
#                               print the HAProxy configuration `up` writes
#   (make topology / make topology-down)
#
# Environment:
#   TOPOLOGY_DIR   state directory (default $TMPDIR/ledgerd-topology): data
#                  directories, configuration, logs, pid files, env file
#   TOPOLOGY_NODES number of API nodes (default 3)
#   TOPOLOGY_DB    pgbouncer | primary | auto (default): what the nodes'
#                  DATABASE_URL points at; auto tries PgBouncer and falls
#                  back to the primary when a node cannot start through it
#   TOPOLOGY_BALANCE  roundrobin (default) | ledger: how HAProxy spreads
#                  writes. roundrobin: every request round-robin over the
#                  nodes; ledger: every write (any method but GET and
#                  HEAD) of one ledger goes to one node, chosen by a
#                  consistent hash of /v1/ledgers/{ledger}, and reads go
#                  round-robin (recommended for production). One ledger's
#                  commits are serialised by its ordering lock; written
#                  from three nodes they measured 2-2.4x slower than from
#                  one (docs/scaling.md, "One ledger, many nodes")
#   LEDGERD_BIN    the ledgerd binary (default bin/ledgerd)
#   PG_BINDIR      PostgreSQL server binaries (default the newest
#                  /usr/lib/postgresql/*/bin)
#   TOPOLOGY_PG_SETTINGS  extra primary settings, space-separated name=value
#   LEDGERD_*      passed to every node
#
# Nothing here touches a process it did not start: every process is
# recorded by PID in $TOPOLOGY_DIR/pids and stopped by that PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${TOPOLOGY_DIR:-${TMPDIR:-/tmp}/ledgerd-topology}"
NODES="${TOPOLOGY_NODES:-3}"
DBVIA="${TOPOLOGY_DB:-auto}"
BALANCE="${TOPOLOGY_BALANCE:-roundrobin}"
[[ "$BALANCE" == ledger || "$BALANCE" == roundrobin ]] || {
	echo "TOPOLOGY_BALANCE=$BALANCE: ledger or roundrobin" >&2
	exit 2
}
LEDGERD_BIN="${LEDGERD_BIN:-$ROOT/bin/ledgerd}"
PG_BINDIR="${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

log() { printf 'topology %s: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

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

# PostgreSQL and PgBouncer refuse to run as root: as root they run as the
# postgres user.
as_pg() {
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# wait_http URL SECONDS [PID]: until URL answers 200 (false at once when
# PID exits).
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if [[ -n "${3:-}" ]] && ! kill -0 "$3" 2>/dev/null; then
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

record_pid() { echo "$1 $2" >>"$DIR/pids"; } # name pid

stop_pid() { # name pid: SIGTERM, wait up to 30 s, then SIGKILL
	local name=$1 pid=$2 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$name ($pid) did not stop within 30 s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

start_pg() { # name port [extra initdb-less setup done by caller]
	local data=$1 port=$2
	as_pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$DIR/$(basename "$data").log" -w -t 60 \
		-o "-p $port -k $DIR/sock -c listen_addresses=127.0.0.1" start >/dev/null
	record_pid "postgres-$(basename "$data")" "$(head -n 1 "$data/postmaster.pid")"
}

start_node() { # i dburl port
	local i=$1 url=$2 port=$3
	env DATABASE_URL="$url" DATABASE_REPLICA_URL="$REPLICA_URL" LEDGERD_ADDR="127.0.0.1:$port" \
		LEDGERD_DEBUG_ADDR="127.0.0.1:$((port + 1))" LEDGERD_ADMIN_KEY="$ADMIN_KEY" \
		LEDGERD_DRAIN_DELAY="${LEDGERD_DRAIN_DELAY:-2s}" LEDGERD_ACCESS_LOG="${LEDGERD_ACCESS_LOG:-false}" \
		REDIS_URL="$REDIS_URL" \
		nohup "$LEDGERD_BIN" serve >>"$DIR/node$i.log" 2>&1 &
	echo $!
}

# haproxy_config BIND BALANCE NODE_ADDR...: HAProxy's configuration (also
# `$0 haproxy-config`, which e2e/ledgerroute_test.go runs: the test checks
# the configuration shipped here).
haproxy_config() {
	local bind=$1 balance=$2 i
	shift 2
	local addrs=("$@")
	cat <<-EOF
		global
		    maxconn 4000
		defaults
		    mode http
		    timeout connect 2s
		    timeout client 60s
		    timeout server 60s
		    timeout http-keep-alive 60s
		    # A request that never reached a node is safe to send to another.
		    retries 3
		    retry-on conn-failure
		    option redispatch
		frontend api
		    bind $bind
	EOF
	if [[ "$balance" == ledger ]]; then
		# A ledger's writes on one node keep its group commit whole
		# (one writer, large batches, the cached fast path) instead of
		# three writers taking turns at the ledger's lock, each
		# holding it across a round trip. Any node still serves any
		# ledger: when the hashed node fails its check, its ledgers
		# move to the others, and only those.
		cat <<-EOF
			    acl write_method method POST PUT PATCH DELETE
			    use_backend writers if write_method
		EOF
	fi
	cat <<-EOF
		    default_backend nodes
		backend nodes
		    balance roundrobin
		    option httpchk GET /readyz
		    http-check expect status 200
		    default-server inter 500ms fastinter 250ms fall 2 rise 2
	EOF
	for ((i = 1; i <= ${#addrs[@]}; i++)); do
		echo "    server node$i ${addrs[i - 1]} check"
	done
	if [[ "$balance" == ledger ]]; then
		cat <<-EOF
			backend writers
			    balance uri path-only depth 3
			    hash-type consistent
		EOF
		for ((i = 1; i <= ${#addrs[@]}; i++)); do
			echo "    server node$i ${addrs[i - 1]} track nodes/node$i"
		done
	fi
}

up() {
	[[ -e "$DIR/pids" ]] && die "$DIR/pids exists: the topology runs (or ran); run '$0 down' first"
	[[ -x "$PG_BINDIR/postgres" ]] || die "no PostgreSQL server binaries (PG_BINDIR=$PG_BINDIR): scripts/ensure-deps.sh"
	[[ -x "$LEDGERD_BIN" ]] || die "no ledgerd binary at $LEDGERD_BIN: make build"
	"$ROOT/scripts/ensure-deps.sh" pgbouncer haproxy redis-server pg_basebackup curl >/dev/null
	stop_debian_services
	mkdir -p "$DIR/sock"
	: >"$DIR/pids"
	if ((EUID == 0)); then
		chown postgres: "$DIR" "$DIR/sock"
		chmod 755 "$DIR"
	fi
	trap 'rc=$?; if ((rc != 0)); then log "failed; stopping what started (logs kept in $DIR)"; down keep; fi' EXIT

	local pport rport bport hport
	pport=$(free_port) && rport=$(free_port) && bport=$(free_port) && hport=$(free_port) || die "no free port"
	log "PostgreSQL primary on 127.0.0.1:$pport"
	as_pg "$PG_BINDIR/initdb" -D "$DIR/primary" -A trust -U postgres -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1
	cat >>"$DIR/primary/postgresql.conf" <<-EOF
		wal_level = replica
		max_wal_senders = 5
		hot_standby = on
		max_connections = 200
		shared_buffers = 256MB
	EOF
	local kv
	for kv in ${TOPOLOGY_PG_SETTINGS:-}; do
		echo "${kv%%=*} = '${kv#*=}'" >>"$DIR/primary/postgresql.conf"
	done
	start_pg "$DIR/primary" "$pport"
	"$PG_BINDIR/psql" -h 127.0.0.1 -p "$pport" -U postgres -qc "CREATE DATABASE ledgerd" postgres
	local primary="postgres://postgres@127.0.0.1:$pport/ledgerd?sslmode=disable"
	DATABASE_URL="$primary" "$LEDGERD_BIN" migrate >>"$DIR/migrate.log" 2>&1

	log "streaming replica on 127.0.0.1:$rport (pg_basebackup)"
	as_pg "$PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres -D "$DIR/replica" -R -X stream -c fast >>"$DIR/basebackup.log" 2>&1
	start_pg "$DIR/replica" "$rport"
	REPLICA_URL="postgres://postgres@127.0.0.1:$rport/ledgerd?sslmode=disable"

	log "PgBouncer (transaction mode) on 127.0.0.1:$bport"
	cat >"$DIR/pgbouncer.ini" <<-EOF
		[databases]
		ledgerd = host=127.0.0.1 port=$pport dbname=ledgerd
		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $bport
		unix_socket_dir = $DIR/sock
		auth_type = trust
		auth_file = $DIR/userlist.txt
		pool_mode = transaction
		default_pool_size = 40
		max_client_conn = 2000
		server_reset_query =
		logfile = $DIR/pgbouncer.log
		pidfile = $DIR/pgbouncer.pid
	EOF
	echo '"postgres" ""' >"$DIR/userlist.txt"
	((EUID == 0)) && chown postgres: "$DIR/pgbouncer.ini" "$DIR/userlist.txt"
	as_pg pgbouncer -d "$DIR/pgbouncer.ini"
	for _ in $(seq 100); do [[ -s "$DIR/pgbouncer.pid" ]] && break; sleep 0.1; done
	[[ -s "$DIR/pgbouncer.pid" ]] || die "PgBouncer wrote no pid file: $(tail -n 3 "$DIR/pgbouncer.log" 2>/dev/null)"
	record_pid pgbouncer "$(cat "$DIR/pgbouncer.pid")"
	local bouncer="postgres://postgres@127.0.0.1:$bport/ledgerd?sslmode=disable&ledgerd_pooler=pgbouncer"

	REDIS_URL=""
	if command -v redis-server >/dev/null; then
		local redport
		redport=$(free_port)
		log "Redis on 127.0.0.1:$redport (shared rate limits)"
		mkdir -p "$DIR/redis"
		redis-server --bind 127.0.0.1 --port "$redport" --dir "$DIR/redis" --save "" --appendonly no \
			--daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
		for _ in $(seq 100); do [[ -s "$DIR/redis.pid" ]] && break; sleep 0.1; done
		[[ -s "$DIR/redis.pid" ]] || die "redis-server wrote no pid file: $(tail -n 3 "$DIR/redis.log" 2>/dev/null)"
		record_pid redis "$(cat "$DIR/redis.pid")"
		REDIS_URL="redis://127.0.0.1:$redport/0"
	fi

	ADMIN_KEY="${LEDGERD_ADMIN_KEY:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
	local ports=() i url="$bouncer" pid
	for ((i = 1; i <= NODES; i++)); do
		ports+=("$(free_port)")
	done
	if [[ "$DBVIA" == primary ]]; then
		url="$primary"
	fi
	for ((i = 1; i <= NODES; i++)); do
		pid=$(start_node "$i" "$url" "${ports[i - 1]}")
		if ! wait_http "http://127.0.0.1:${ports[i - 1]}/readyz" 30 "$pid"; then
			if [[ "$DBVIA" == auto && "$url" == "$bouncer" ]]; then
				log "node $i did not start through PgBouncer ($(tail -n 1 "$DIR/node$i.log")); the nodes use the primary directly"
				stop_pid "node$i" "$pid"
				url="$primary"
				pid=$(start_node "$i" "$url" "${ports[i - 1]}")
				wait_http "http://127.0.0.1:${ports[i - 1]}/readyz" 30 || die "node $i not ready: $(tail -n 3 "$DIR/node$i.log")"
			else
				die "node $i not ready: $(tail -n 3 "$DIR/node$i.log")"
			fi
		fi
		record_pid "node$i" "$pid"
		log "ledgerd serve node $i on 127.0.0.1:${ports[i - 1]} (pid $pid)"
	done

	WORKER_NOTE="not started: this build has no 'ledgerd worker'"
	if "$LEDGERD_BIN" worker --help >/dev/null 2>&1; then
		# The worker listens for notifications: a direct connection, never
		# through PgBouncer's transaction mode.
		local wport
		wport=$(free_port)
		env DATABASE_URL="$primary" LEDGERD_WORKER_DEBUG_ADDR="127.0.0.1:$wport" \
			nohup "$LEDGERD_BIN" worker >>"$DIR/worker.log" 2>&1 &
		pid=$!
		record_pid worker "$pid"
		WORKER_NOTE="pid $pid, metrics http://127.0.0.1:$wport/metrics, log $DIR/worker.log"
	fi

	log "HAProxy on 127.0.0.1:$hport (writes balanced by $BALANCE)"
	local addrs=()
	for ((i = 1; i <= NODES; i++)); do
		addrs+=("127.0.0.1:${ports[i - 1]}")
	done
	haproxy_config "127.0.0.1:$hport" "$BALANCE" "${addrs[@]}" >"$DIR/haproxy.cfg"
	haproxy -c -q -f "$DIR/haproxy.cfg"
	haproxy -D -f "$DIR/haproxy.cfg" -p "$DIR/haproxy.pid" >>"$DIR/haproxy.log" 2>&1
	for _ in $(seq 100); do [[ -s "$DIR/haproxy.pid" ]] && break; sleep 0.1; done
	[[ -s "$DIR/haproxy.pid" ]] || die "HAProxy wrote no pid file: $(tail -n 3 "$DIR/haproxy.log")"
	record_pid haproxy "$(head -n 1 "$DIR/haproxy.pid")"
	wait_http "http://127.0.0.1:$hport/readyz" 10 || die "HAProxy does not answer"

	cat >"$DIR/env" <<-EOF
		LEDGERD_URL='http://127.0.0.1:$hport'
		LEDGERD_ADMIN_KEY='$ADMIN_KEY'
		DATABASE_URL='$url'
		DATABASE_PRIMARY_URL='$primary'
		DATABASE_PGBOUNCER_URL='$bouncer'
		DATABASE_REPLICA_URL='$REPLICA_URL'
		REDIS_URL='$REDIS_URL'
		TOPOLOGY_BALANCE='$BALANCE'
		NODE_URLS="$(for p in "${ports[@]}"; do printf "http://127.0.0.1:%s " "$p"; done)"
	EOF
	trap - EXIT
	cat <<-EOF
		ledgerd topology up (state in $DIR, env in $DIR/env):
		  API (HAProxy)   http://127.0.0.1:$hport (writes: $BALANCE)
		  admin key       $ADMIN_KEY
		  nodes           $(for p in "${ports[@]}"; do printf 'http://127.0.0.1:%s ' "$p"; done)
		  nodes' database $url
		  primary         $primary
		  PgBouncer       $bouncer
		  replica         $REPLICA_URL
		  Redis           ${REDIS_URL:-(not installed: limits per node)}
		  worker          $WORKER_NOTE
		Try: $LEDGERD_BIN loadtest --url http://127.0.0.1:$hport --key $ADMIN_KEY --duration 10s
		Stop: make topology-down
	EOF
}

# Installing the packages may start Debian's own services: stop them by
# their pid files (never by name).
stop_debian_services() {
	local f
	for f in /run/pgbouncer/pgbouncer.pid /run/haproxy.pid /run/redis/redis-server.pid; do
		if [[ -s "$f" ]]; then
			log "stopping the Debian service with pid file $f"
			stop_pid "$f" "$(head -n 1 "$f")"
		fi
	done
}

down() {
	[[ -e "$DIR/pids" ]] || {
		log "nothing recorded in $DIR/pids"
		return 0
	}
	local name pid lines=()
	mapfile -t lines <"$DIR/pids"
	# Reverse order: the balancer first, the primary last.
	for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
		read -r name pid <<<"${lines[i]}"
		case "$name" in
		postgres-*)
			local data="$DIR/${name#postgres-}"
			as_pg "$PG_BINDIR/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || stop_pid "$name" "$pid"
			;;
		*) stop_pid "$name" "$pid" ;;
		esac
	done
	rm -f "$DIR/pids"
	if [[ "${1:-}" == keep ]]; then
		return 0
	fi
	rm -rf "${DIR:?}"
	log "stopped; $DIR removed"
}

status() {
	[[ -e "$DIR/pids" ]] || {
		echo "not running"
		return 0
	}
	local name pid
	while read -r name pid; do
		if kill -0 "$pid" 2>/dev/null; then echo "$name $pid running"; else echo "$name $pid gone"; fi
	done <"$DIR/pids"
	cat "$DIR/env"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
haproxy-config)
	shift
	haproxy_config "$@"
	;;
*)
	sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
