#!/usr/bin/env bash
# Upgrade: the current ganserve starts on a job store written by the previous version
# (tests/fixtures/legacy_store: schema v2, protobuf requests, killed mid-training) and
# every job goes on: the running adaptation resumes from its checkpoint, the queued
# inversion and statistics jobs run, the finished job stays as it was.
# Usage: upgrade_test.sh BUILD_DIR
set -euo pipefail
build=$1
ganserve=$build/server/ganserve
ganctl=$build/client/ganctl
fixture=$(cd "$(dirname "$0")/../fixtures/legacy_store" && pwd)
source "$(dirname "$0")/lib.sh"

step "the demo pack the old store's jobs were made with, and the old store"
"$ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
mkdir -p "$work/data"
cp "$fixture/jobs.db" "$work/data/jobs.db"
cp -r "$fixture/checkpoints" "$work/data/checkpoints"

step "start the current server on it"
"$ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data" --model_repository "$work/models" \
  --device cpu --checkpoint_every 5 2> "$work/server.log" &
server_pid=$!
port=$(server_port "$work/server.log")
addr=127.0.0.1:$port
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
grep -q "job store upgraded: 4 stored request(s) converted to specs, 0 could not be" "$work/server.log" \
  || fail "the stored requests were not converted"

step "the adaptation that was running resumes from its checkpoint and publishes its model"
"$ganctl" --server "$addr" --timeout 0 jobs watch job-704f8123052e9a71 --after-seq 0 > "$work/adapt.out" 2>&1 \
  || fail "resumed adaptation did not succeed: $(tail -3 "$work/adapt.out")"
grep -q "job job-704f8123052e9a71 resuming from its checkpoint at step" "$work/server.log" \
  || fail "the adaptation did not resume from its checkpoint"
"$ganctl" --server "$addr" --json jobs get job-704f8123052e9a71 | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["state"] == "JOB_STATE_SUCCEEDED" and j["result"] == "legacy-water" and j["step"] == "30", j' \
  || fail "adaptation state"
"$ganctl" --server "$addr" models get legacy-water > /dev/null || fail "the adapted model is not listed"
"$ganctl" --server "$addr" generate --model legacy-water --seeds 1 --out "$work/water" 2> /dev/null \
  || fail "the adapted model does not render"
python3 - "$work/models/legacy-water/manifest.json" <<'PY' || fail "the manifest does not record the spec"
import json, sys
m = json.load(open(sys.argv[1]))
t = m["training"]
assert t["iterations"] == 30 and t["seed"] == 7 and t["target_text"] == "watercolor", t
assert t["clip_models"] == [{"name": "demo-clip", "weight": 1.0}], t
PY

step "a retry of a request submitted before the upgrade attaches to its job"
# The same flags as the old store's job (tests/fixtures/legacy_store/make.sh): the same
# request_id and payload, so its job comes back instead of ALREADY_EXISTS.
"$ganctl" --server "$addr" --timeout 0 adapt --model demo --to "watercolor" --iterations 30 --name legacy-water \
  --preview-every 10 --seed 7 --request-id legacy-running --out "$work/retry" > "$work/retry.out" 2>&1 \
  || fail "the retry was refused: $(tail -2 "$work/retry.out")"
"$ganctl" --server "$addr" --json jobs list --kind adapt | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
assert len(jobs) == 2, jobs' || fail "the retry created a new job"
set +e
msg=$("$ganctl" --server "$addr" --timeout 0 adapt --model demo --to "oil painting" --iterations 30 \
  --request-id legacy-running --out "$work/retry2" 2>&1); rc=$?
set -e
[ "$rc" = 1 ] && echo "$msg" | grep -q ALREADY_EXISTS || fail "another payload under the same request_id: $msg"

step "the queued inversion and statistics jobs run from their converted requests"
for job in job-2d89f26cc57c36aa job-567b798580c2068e; do
  "$ganctl" --server "$addr" --timeout 0 jobs watch "$job" --after-seq 0 > "$work/$job.out" 2>&1 \
    || fail "$job did not succeed: $(tail -3 "$work/$job.out")"
done
"$ganctl" --server "$addr" generate --model demo --inversion inv-2d89f26cc57c36aa --out "$work/inv" 2> /dev/null \
  || fail "the inversion does not render"

step "the job that had finished is unchanged"
"$ganctl" --server "$addr" --json jobs get job-60abe425e55bc009 | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["state"] == "JOB_STATE_SUCCEEDED" and j["result"] == "legacy-done" and j["request_id"] == "legacy-done", j' \
  || fail "finished job"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exit code $?"
server_pid=""
echo "upgrade e2e: OK"
