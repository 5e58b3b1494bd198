#!/bin/sh
# bodyflood.sh: the peak memory of a node that receives N concurrent
# ~15.5 MB batch requests from one write key (N=12 by default), and what
# each got. Starts its own `ledgerd dev` in a temporary directory, so it
# needs the PostgreSQL binaries that `make run` needs.
#
#   scripts/bodyflood.sh [./bin/ledgerd] [N] [KEYS]
#
# KEYS (default 1) write keys share the N requests round-robin.
#
# It prints the node's resident memory before, its peak (VmHWM) after, and
# the HTTP statuses. With the default body budget (LEDGERD_BODY_BUDGET
# 40 MiB, LEDGERD_KEY_BODY_BUDGET 20 MiB) one key gets one batch in at a
# time and is answered 429 for the rest; with several keys the node takes
# two and answers 503 to the rest.
set -eu
BIN=${1:-./bin/ledgerd}
N=${2:-12}
KEYS=${3:-1}
PORT=${PORT:-18471}
DIR=$(mktemp -d)
chmod 711 "$DIR" # PostgreSQL runs as its own user when this runs as root
URL=http://127.0.0.1:$PORT
LEDGERD_ACCESS_LOG=false "$BIN" dev --data-dir "$DIR/data" --addr 127.0.0.1:$PORT --debug-addr= >"$DIR/dev.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
i=0
until curl -fs "$URL/readyz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 600 ] || { echo "ledgerd dev did not start:"; cat "$DIR/dev.log"; exit 1; }
	sleep 0.1
done
ADMIN=$(cat "$DIR/data/admin-key")
api() { curl -fsS -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "$URL$2" -d "$3"; }
api "$ADMIN" /v1/ledgers '{"name":"flood"}' >/dev/null
api "$ADMIN" /v1/ledgers/flood/accounts '{"id":"world","asset":"USD","min_balance":null}' >/dev/null
api "$ADMIN" /v1/ledgers/flood/accounts '{"id":"a","asset":"USD"}' >/dev/null
k=0
while [ $k -lt "$KEYS" ]; do
	api "$ADMIN" /v1/api-keys '{"ledger":"flood","role":"write"}' | sed 's/.*"key":"\([^"]*\)".*/\1/' >"$DIR/key.$k"
	k=$((k + 1))
done

# 1,000 transfers, each with 31 metadata values of 500 bytes: ~15.5 MB.
python3 - "$DIR/batch.json" <<'EOF'
import json, sys
md = {"k%02d" % i: "x" * 500 for i in range(31)}
items = [{"postings": [{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}], "metadata": md} for _ in range(1000)]
open(sys.argv[1], "w").write(json.dumps({"atomic": False, "transactions": items}))
EOF

rss() { awk -v k="$1" '$1 == k":" { printf "%d MB", $2 / 1024 }' "/proc/$PID/status"; }
echo "batch: $(wc -c <"$DIR/batch.json") bytes, $N concurrent requests, $KEYS key(s)"
echo "RSS before: $(rss VmRSS)"
j=0
PIDS=
while [ $j -lt "$N" ]; do
	KEY=$(cat "$DIR/key.$((j % KEYS))")
	curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		--data-binary "@$DIR/batch.json" "$URL/v1/ledgers/flood/transactions/batch" >"$DIR/status.$j" &
	PIDS="$PIDS $!"
	j=$((j + 1))
done
for p in $PIDS; do wait "$p" || true; done
sleep 0.5
echo "RSS peak (VmHWM): $(rss VmHWM), now: $(rss VmRSS)"
printf 'statuses: '
cat "$DIR"/status.* | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }'
echo
