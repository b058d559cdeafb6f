#!/usr/bin/env bash
# RDAP load benchmark runner: wrk against a baseline axum handler,
# zonekeeper's RDAP router over N synthetic domains, and icann-rdap-srv
# when built. Bounded: each wrk run has -d plus a hard timeout.
#   benches/rdap_load.sh [DOMAINS] [SECONDS]
# Set BUILD_RDAP_SRV=1 to build icann-rdap-srv 0.0.22 (long compile) into
# ~/.cache/zonekeeper/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 2; }
root="$HOME/.cache/zonekeeper/icann-rdap-srv-0.0.22"
if [ "${BUILD_RDAP_SRV:-0}" = 1 ] && [ ! -x "$root/bin/rdap-srv" ]; then
  cargo install --locked --version 0.0.22 icann-rdap-srv --root "$root"
fi
export RDAP_BENCH_DOMAINS="${1:-${RDAP_BENCH_DOMAINS:-1000000}}"
export RDAP_BENCH_SECS="${2:-${RDAP_BENCH_SECS:-10}}"
exec timeout 3600 cargo bench --bench rdap_load
