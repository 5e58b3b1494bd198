#!/usr/bin/env bash
# explain.sh — regenerate the query plans in docs/queries.md.
#
# Starts a throwaway PostgreSQL (temporary directory, 127.0.0.1 only, run as
# the postgres user when this runs as root), migrates it with
# `ledgerd migrate`, bulk-loads a ledger with scripts/explaindb/load.sql
# (10,000 accounts, 1,000,000 transactions = 2,000,000 entries over three
# months of monthly partitions, and the tables the workers read and trim),
# ANALYZEs, runs EXPLAIN (ANALYZE, BUFFERS) on every query the API and the
# workers run and rewrites the generated section of
# docs/queries.md. The cluster is stopped at the end, also on Ctrl-C.
# Three to five minutes on a 2-core machine; needs ~3 GB of disk in $TMPDIR.
#
# Usage:
#   scripts/explain.sh                          # the standard data set
#   scripts/explain.sh -transactions 10000000   # flags of scripts/explaindb
#   scripts/explain.sh -out /tmp/queries.md     # write elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

scripts/ensure-deps.sh >&2

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ledgerd" ./cmd/ledgerd
go build -o "$tmp/explaindb" ./scripts/explaindb
"$tmp/explaindb" -ledgerd "$tmp/ledgerd" -out docs/queries.md "$@"
