#!/usr/bin/env bash
# Soak: a real ganserve on loopback with the 32 px demo pack under mixed load for
# MINUTES (default 30), then IDLE minutes (default 3) of quiet, sampling the server's
# resident memory, open descriptors and jobs.db size every minute; prints and keeps a
# JSON report (latency percentiles and status codes per method, the samples, and the
# goals: RSS at the end within 10 % of its level after 5 minutes, no error other than
# RESOURCE_EXHAUSTED, descriptors back to their start). A benchmark, not a CI test.
#
#   bench/soak.sh [BUILD_DIR] [MINUTES] [IDLE_MINUTES] [REPORT.json]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
minutes="${2:-30}"
idle="${3:-3}"
report="${4:-$root/build/soak-report.json}"
source "$root/tests/e2e/lib.sh"
cmake --build "$build" --target ganserve ganctl ganserve_soak > /dev/null
"$build/client/ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
"$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --data_dir "$work/data" \
  --model_repository "$work/models" --device cpu --checkpoint_every 10 2> "$work/server.log" &
server_pid=$!
port=$(server_port "$work/server.log")
for _ in $(seq 1 100); do
  "$build/client/ganctl" --server "127.0.0.1:$port" health > /dev/null 2>&1 && break
  sleep 0.2
done
echo "soak: ganserve pid $server_pid on port $port, $minutes min load + $idle min idle" >&2
"$build/bench/ganserve_soak" --server "127.0.0.1:$port" --pid "$server_pid" --data_dir "$work/data" \
  --minutes "$minutes" --idle_minutes "$idle" --out "$report"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
echo "soak: report in $report; server log lines with 'error': $(grep -ci error "$work/server.log" || true)" >&2
