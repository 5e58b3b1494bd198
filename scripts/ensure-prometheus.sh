#!/usr/bin/env bash
# ensure-prometheus.sh — install Debian's `prometheus` package (the server and
# promtool) when missing, for the alert-rule and scrape tests, without leaving
# a Prometheus service running: the package's maintainer scripts would start
# one through invoke-rc.d, which a policy-rc.d that answers 101 forbids.
#
# Idempotent: with promtool and prometheus present it changes nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
	exit 0
fi

policy=/usr/sbin/policy-rc.d
added_policy=0
if ((EUID == 0)) && [[ ! -e "$policy" ]]; then
	printf '#!/bin/sh\n# ledgerd ensure-prometheus.sh: no service starts during install\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	added_policy=1
fi
cleanup() {
	if ((added_policy)); then rm -f "$policy"; fi
}
trap cleanup EXIT

"$(dirname "$0")/ensure-deps.sh" prometheus promtool

# On a machine where a service manager started it anyway (no policy-rc.d
# honoured), stop exactly that service, by its own means, never by name
# matching.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	systemctl disable --now prometheus.service >/dev/null 2>&1 || true
elif [[ -f /run/prometheus.pid ]]; then
	kill "$(cat /run/prometheus.pid)" 2>/dev/null || true
fi
