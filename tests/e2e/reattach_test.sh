#!/usr/bin/env bash
# A server that closes aged connections (--max_connection_age_seconds 1, as one behind
# client-side load balancing would): ganctl follows an adaptation to its end by
# re-attaching with after_seq each time its stream is cut.
# Usage: reattach_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/lib.sh"
"$build/client/ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
"$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data" --model_repository "$work/models" \
  --device cpu --max_connection_age_seconds 1 --max_connection_age_grace_seconds 1 2> "$work/server.log" &
server_pid=$!
addr=127.0.0.1:$(server_port "$work/server.log")
for _ in $(seq 1 100); do "$build/client/ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
step "adapt across cut connections"
"$build/client/ganctl" --server "$addr" --timeout 0 adapt --model demo --from photo --to sketch --iterations 80 \
  --name demo-age > "$work/adapt.out" 2> "$work/adapt.err" || fail "adapt: $(tail -3 "$work/adapt.err")"
grep -q "^demo-age$" "$work/adapt.out" || fail "adapt did not print the model"
grep -q "re-attaching to job" "$work/adapt.err" || fail "the stream was never cut (is the job too short?)"
echo "reattach: passed ($(grep -c 're-attaching' "$work/adapt.err") re-attachments)"
