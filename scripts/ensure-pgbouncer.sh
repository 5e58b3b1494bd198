#!/usr/bin/env bash
# ensure-pgbouncer.sh — make sure PgBouncer (and pg_basebackup, for the
# replica tests) are installed, for the test pass that runs every
# connection through PgBouncer (LEDGERD_TEST_PGBOUNCER=1; the tests start
# their own PgBouncer on a free loopback port, see pgcluster.StartPgBouncer).
#
# Installing Debian's pgbouncer package may start its own service (port
# 6432, /etc/pgbouncer). ledgerd's tests do not use it: when this script
# installed the package, it stops that service again, by its pid file. A
# pgbouncer that was installed before is left alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

had=1
command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]] || had=0
"$here/ensure-deps.sh" pgbouncer pg_basebackup

if ((had == 0)); then
	pidfile=/var/run/postgresql/pgbouncer.pid
	if [[ -s "$pidfile" ]]; then
		pid="$(cat "$pidfile")"
		# Only a pgbouncer process: a stale pid file may name anything.
		if [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == pgbouncer ]]; then
			echo "ensure-pgbouncer: stopping the package's own pgbouncer service (pid $pid)"
			kill -INT "$pid" || true
		fi
	fi
fi
