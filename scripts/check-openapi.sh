#!/usr/bin/env bash
# check-openapi.sh — hold httpapi/openapi.json to two real tools:
#
#   1. ogen (the Go code generator of the dependency stack) must generate a
#      server and client from it without a warning, and the generated code
#      must compile;
#   2. Redocly's linter, recommended ruleset, must report no error and no
#      warning.
#
# Needs Go and Node (npx); the first run downloads ogen and the Redocly CLI
# (versions pinned below), later runs use the module and npm caches.
#
# Usage: scripts/check-openapi.sh [path/to/openapi.json]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

OGEN_VERSION=v1.24.0
REDOCLY_VERSION=2.77.0
doc="${1:-httpapi/openapi.json}"
doc="$(cd "$(dirname "$doc")" && pwd)/$(basename "$doc")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The generated code goes to a fixed directory so that Go's build cache
# knows it again: compiling it anew takes about a minute on 2 cores.
gen="${TMPDIR:-/tmp}/ledgerd-openapi-check"

echo "== ogen $OGEN_VERSION"
# ogen logs INFO lines for features it merely does not use (e.g. no
# "default" response); anything at WARN or above is a finding.
if ! go run "github.com/ogen-go/ogen/cmd/ogen@$OGEN_VERSION" --target "$gen" --package api --clean "$doc" >"$tmp/ogen.log" 2>&1; then
	cat "$tmp/ogen.log"
	echo "ogen refused $doc" >&2
	exit 1
fi
if grep -E '^(WARN|ERROR|FATAL)' "$tmp/ogen.log"; then
	echo "ogen warned about $doc" >&2
	exit 1
fi
(
	cd "$gen"
	# The runtime at the generator's version: tidy then resolves every
	# import inside ogen's own module graph, without asking for "latest".
	printf 'module example.com/api\n\ngo 1.26\n\nrequire github.com/ogen-go/ogen %s\n' "$OGEN_VERSION" >go.mod
	go mod tidy >/dev/null 2>"$tmp/tidy.log" || { cat "$tmp/tidy.log"; exit 1; }
	go build ./...
)
echo "ogen: generated code compiles"

echo "== redocly lint (recommended) $REDOCLY_VERSION"
if ! npx --yes "@redocly/cli@$REDOCLY_VERSION" lint --extends recommended "$doc" >"$tmp/redocly.log" 2>&1; then
	cat "$tmp/redocly.log"
	echo "redocly found errors in $doc" >&2
	exit 1
fi
if grep -E 'You have [0-9]+ warning' "$tmp/redocly.log"; then
	cat "$tmp/redocly.log"
	echo "redocly warned about $doc" >&2
	exit 1
fi
echo "redocly: no errors, no warnings"
