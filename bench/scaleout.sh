#!/usr/bin/env bash
# Scale-out figures on one machine (a benchmark, not a CI test):
#  1. the shared job store with no-op runners (ganserve_jobs_bench): jobs/s through
#     submit -> claim -> finish, claim latency, events/s to 100 watchers over 3
#     replicas; on SQLite and on a throwaway PostgreSQL cluster (pg_virtualenv);
#  2. GenerateSamples throughput of 3 ganserve replicas against 1 on the 32 px demo pack
#     (CALLERS concurrent ganctl calls of 8 images, round-robin over the replicas). On a
#     machine with few cores this is a check that nothing serialises across replicas, not
#     a speed-up.
#   bench/scaleout.sh [BUILD_DIR] [CALLERS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
callers="${2:-6}"
if [ -z "${GANSERVE_IN_PG_VIRTUALENV:-}" ]; then
  cmake --build "$build" --target ganserve ganctl ganserve_jobs_bench > /dev/null
  exec pg_virtualenv -- env GANSERVE_IN_PG_VIRTUALENV=1 bash "$0" "$build" "$callers"
fi
source "$root/tests/e2e/lib.sh"
echo "== job store, no-op runners: 3 replicas, 300 jobs of 10 steps, 100 watchers"
"$build/bench/ganserve_jobs_bench" --store sqlite --replicas 3 --jobs 300 --steps 10 --watchers 100
"$build/bench/ganserve_jobs_bench" --store postgresql:// --replicas 3 --jobs 300 --steps 10 --watchers 100
"$build/bench/ganserve_jobs_bench" --store postgresql:// --replicas 1 --jobs 300 --steps 10 --watchers 100

echo "== GenerateSamples: $callers concurrent callers x 8 images (32 px demo), 1 replica vs 3"
"$build/client/ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
pids=()
trap 'kill -9 "${pids[@]}" 2> /dev/null; cleanup' EXIT
targets=()
for i in 1 2 3; do
  "$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data$i" \
    --model_repository "$work/models" --device cpu --job_store postgresql:// --worker_id "r$i" \
    2> "$work/replica$i.log" &
  pids+=($!)
  targets+=("127.0.0.1:$(server_port "$work/replica$i.log")")
done
for t in "${targets[@]}"; do
  for _ in $(seq 1 100); do "$build/client/ganctl" --server "$t" health > /dev/null 2>&1 && break; sleep 0.2; done
  "$build/client/ganctl" --server "$t" generate --model demo --seeds 1-8 --out "$work/warm" > /dev/null
done
run() {  # TARGET: seconds for the callers
  local t0 t1 callers_pids=()
  t0=$(date +%s.%N)
  for c in $(seq 1 "$callers"); do
    "$build/client/ganctl" --server "$1" generate --model demo --seeds "$((c * 100))-$((c * 100 + 7))" \
      --out "$work/gen$c" > /dev/null &
    callers_pids+=($!)
  done
  wait "${callers_pids[@]}"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
one=$(run "${targets[0]}")
all=$(run "ipv4:$(IFS=,; echo "${targets[*]}")")
python3 - "$callers" "$one" "$all" <<'PY'
import json, sys
callers, one, three = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
images = callers * 8
print(json.dumps({"scenario": "generate_replicas", "callers": callers, "images": images,
                  "one_replica_images_per_second": images / one, "three_replicas_images_per_second": images / three}))
PY
