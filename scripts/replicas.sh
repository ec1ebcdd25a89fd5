#!/usr/bin/env bash
# Scale-out on one machine: a throwaway PostgreSQL cluster (pg_virtualenv, from
# postgresql-common), a loopback S3 server (s3rver from npm, as the tests use) and three
# ganserve replicas sharing them, on the demo pack. Each replica has its own data and
# model folders; checkpoints, adapted models and inversions go through the object store
# (without node/npm the replicas share the folders instead). Each claims jobs under
# leases. Installs what is missing and builds first. Ctrl-C stops everything and
# removes the cluster.
#   bash scripts/replicas.sh        (gRPC on 127.0.0.1:50061-50063; GANSERVE_REPLICA_PORT moves the first)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GANSERVE_IN_PG_VIRTUALENV:-}" ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh
  exec pg_virtualenv -- env GANSERVE_IN_PG_VIRTUALENV=1 bash "$0" "$@"
fi
root=$PWD/replicas
first=${GANSERVE_REPLICA_PORT:-50061}
mkdir -p "$root"
if ! ls "$root"/models/*/manifest.json > /dev/null 2>&1; then
  build/client/ganctl local make-demo --out "$root/models" --name demo --resolution 64 > /dev/null
fi
source tests/storage/s3rver.sh
own=0
if s3rver_install "$PWD/build"; then
  s3rver_start "$root/s3"
  own=1
fi
pids=()
trap 'kill -TERM "${pids[@]}" 2> /dev/null; wait "${pids[@]}" 2> /dev/null || true; s3rver_stop' EXIT
targets=()
for i in 1 2 3; do
  port=$((first + i - 1))
  folders=(--data_dir "$root/data" --model_repository "$root/models")
  if [ "$own" = 1 ]; then
    [ -d "$root/models$i" ] || cp -r "$root/models" "$root/models$i"
    folders=(--data_dir "$root/data$i" --model_repository "$root/models$i" --artifact_store s3://ganserve/replicas)
  fi
  build/server/ganserve --listen "127.0.0.1:$port" --metrics_listen "127.0.0.1:$((9470 + i))" \
    "${folders[@]}" --device cpu --job_store postgresql:// \
    --worker_id "replica$i" --max_connection_age_seconds 300 2> "$root/replica$i.log" &
  pids+=($!)
  targets+=("127.0.0.1:$port")
done
for t in "${targets[@]}"; do
  for _ in $(seq 1 300); do build/client/ganctl --server "$t" health > /dev/null 2>&1 && break; sleep 0.2; done
done
all=$(IFS=,; echo "${targets[*]}")
echo "3 replicas up (logs: $root/replica*.log), PostgreSQL at ${PGHOST}:${PGPORT} (psql works in this shell's env)."
[ "$own" = 1 ] && echo "Shared files in s3rver at $AWS_ENDPOINT_URL (bucket ganserve, data in $root/s3)."
echo "Drive them, e.g.:"
echo "  build/client/ganctl --server ipv4:$all adapt --model demo --from photo --to sketch --iterations 50"
echo "  build/client/ganctl --server ipv4:$all jobs list"
echo "Ctrl-C stops them."
wait
