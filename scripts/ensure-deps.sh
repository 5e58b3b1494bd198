#!/usr/bin/env bash
# ensure-deps.sh — install the Debian/Ubuntu packages ledgerd's development
# and tests need, when they are missing. Idempotent: with everything present it
# changes nothing and needs no network.
#
# Usage:
#   scripts/ensure-deps.sh                 # PostgreSQL server binaries
#   scripts/ensure-deps.sh pgbench wrk     # ... plus these commands/packages
#   scripts/ensure-deps.sh --check [...]   # report only; exit 1 if missing
#
# Arguments are command names (mapped to their package: pgbench, psql,
# pgbouncer, redis-server, redis-cli, haproxy, prometheus, promtool,
# nats-server, wrk, ...) or Debian package names.
#
# Installing `postgresql` makes Debian create and start its own cluster
# (15/main on port 5432); ledgerd does not use or need it: pgcluster starts
# its own server from /usr/lib/postgresql/*/bin.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

check_only=0
names=(postgres)
for arg in "$@"; do
	case "$arg" in
	--check | -n) check_only=1 ;;
	-h | --help)
		sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "ensure-deps: unknown option $arg" >&2
		exit 2
		;;
	*) names+=("$arg") ;;
	esac
done

# pkg_for NAME: the Debian package that provides NAME.
pkg_for() {
	case "$1" in
	# Server binaries; on Debian 12 pgbench ships in postgresql-15 too
	# (/usr/lib/postgresql/15/bin/pgbench; /usr/bin/pgbench is only a wrapper).
	postgres | postgresql | initdb | pg_ctl | pgbench) echo postgresql ;;
	psql | pg_dump | pg_restore | pg_isready | pg_basebackup) echo postgresql-client ;;
	redis | redis-server) echo redis-server ;;
	redis-cli) echo redis-tools ;;
	promtool) echo prometheus ;;
	nats) echo nats-server ;;
	*) echo "$1" ;;
	esac
}

# pg_bin NAME: NAME exists in some /usr/lib/postgresql/*/bin.
pg_bin() {
	local f
	for f in /usr/lib/postgresql/*/bin/"$1"; do
		[[ -x "$f" ]] && return 0
	done
	return 1
}

pkg_installed() {
	command -v dpkg-query >/dev/null 2>&1 &&
		[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# present NAME: what NAME stands for is already available.
present() {
	case "$1" in
	postgres | postgresql | initdb | pg_ctl)
		pg_bin postgres && pg_bin initdb && pg_bin pg_ctl
		;;
	pgbench | psql | pg_dump | pg_restore | pg_isready | pg_basebackup)
		# /usr/bin/<name> may be Debian's pg_wrapper without a real binary.
		pg_bin "$1"
		;;
	*)
		command -v "$1" >/dev/null 2>&1 || pkg_installed "$(pkg_for "$1")"
		;;
	esac
}

missing_names=()
missing_pkgs=()
for name in "${names[@]}"; do
	present "$name" && continue
	missing_names+=("$name")
	pkg="$(pkg_for "$name")"
	if [[ " ${missing_pkgs[*]-} " != *" $pkg "* ]]; then
		missing_pkgs+=("$pkg")
	fi
done

if ((${#missing_pkgs[@]} == 0)); then
	echo "ensure-deps: all present (${names[*]})"
	exit 0
fi

if ((check_only)); then
	echo "ensure-deps: missing: ${missing_names[*]} (packages: ${missing_pkgs[*]})" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: missing ${missing_names[*]}, and this is not a Debian/Ubuntu system (no apt-get)." >&2
	echo "ensure-deps: install them yourself (macOS: brew install postgresql@16 wrk ...); for PostgreSQL, or set PG_BINDIR." >&2
	exit 1
fi

sudo=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
	else
		echo "ensure-deps: need root to install ${missing_pkgs[*]}, and sudo is not available" >&2
		exit 1
	fi
fi

echo "ensure-deps: installing ${missing_pkgs[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing_pkgs[@]}"

failed=()
for name in "${missing_names[@]}"; do
	present "$name" || failed+=("$name")
done
if ((${#failed[@]})); then
	echo "ensure-deps: still missing after install: ${failed[*]}" >&2
	exit 1
fi
echo "ensure-deps: done"
