#!/usr/bin/env bash
# The job store on PostgreSQL: a throwaway cluster from pg_virtualenv (postgresql-common;
# it works as root too) exporting the PG* variables, then
#  1. the job store contract (jobs_test, the same tests as SQLite's),
#  2. ganserve with --job_store postgresql:// on the demo pack: an adaptation, a restart
#     that still lists it;
#  3. three replicas on the database (leases of 2 s) that share no folder: each has its
#     own data and model folders, and checkpoints, adapted models and inversions go
#     through an S3 store (s3rver on loopback; without node/npm the replicas share the
#     folders instead): jobs run once each, spread over the replicas; an idempotent
#     resubmit elsewhere; a watcher on one replica follows a job on another; kill -9 of a
#     job's replica (another resumes it from its checkpoint, downloaded, and the model
#     renders on a third); kill -STOP past the lease (the stopped replica, resumed,
#     publishes nothing); every database connection dropped mid-job; the object store
#     killed and restarted mid-job (readiness follows it, the job finishes, its model
#     renders elsewhere); cancel on another replica. Every job's events stay gapless.
# The cluster is removed afterwards. Exit 77 (skipped) without pg_virtualenv or a server.
# Usage: postgres_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
if [ -z "${GANSERVE_IN_PG_VIRTUALENV:-}" ]; then
  command -v pg_virtualenv > /dev/null || { echo "skipped: pg_virtualenv not installed (postgresql-common)"; exit 77; }
  ls /usr/lib/postgresql/*/bin/postgres > /dev/null 2>&1 || { echo "skipped: no PostgreSQL server installed"; exit 77; }
  exec pg_virtualenv -- env GANSERVE_IN_PG_VIRTUALENV=1 bash "$0" "$@"
fi
source "$(dirname "$0")/../e2e/lib.sh"

step "job store contract on PostgreSQL"
GANSERVE_TEST_POSTGRES=postgresql:// "$build/tests/jobs_test" --gtest_filter='*/postgres' > "$work/contract.log" 2>&1 \
  || { tail -30 "$work/contract.log"; fail "contract"; }
grep -q "PASSED" "$work/contract.log" || fail "contract: $(tail -5 "$work/contract.log")"
psql -qc "DROP TABLE IF EXISTS job_events, jobs, ganserve_schema CASCADE" > /dev/null

step "ganserve on PostgreSQL: a job survives a restart"
ganctl=$build/client/ganctl
"$ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
start() {
  "$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data$1" \
    --model_repository "$work/models" --device cpu --job_store postgresql:// 2> "$work/server$1.log" &
  server_pid=$!
}
start 1
addr=127.0.0.1:$(server_port "$work/server1.log")
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" --timeout 0 adapt --model demo --from photo --to sketch --iterations 2 --name demo-pg \
  --out "$work/adapt" > /dev/null 2> "$work/adapt.err" || fail "adapt: $(cat "$work/adapt.err")"
[ "$(psql -tAc "SELECT state FROM jobs")" = 3 ] || fail "the job is not SUCCEEDED in PostgreSQL"
[ "$(psql -tAc "SELECT count(*) FROM job_events")" -ge 3 ] || fail "no events in PostgreSQL"
kill "$server_pid"; wait "$server_pid" 2> /dev/null || true
start 2
addr=127.0.0.1:$(server_port "$work/server2.log")
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" jobs list | grep -q "adapt  succeeded" || fail "the job is gone after a restart"
kill "$server_pid"; wait "$server_pid" 2> /dev/null || true
server_pid=""

# Three replicas on the database with short leases, sharing no folder: each has its own
# data folder and a copy of the base models; the rest goes through the object store.
step "3 replicas: each job runs once, anywhere"
psql -qc "DELETE FROM jobs" > /dev/null
source "$(dirname "$0")/../storage/s3rver.sh"
own_folders=0
if s3rver_install "$build"; then
  s3rver_start "$work/s3"
  own_folders=1
else
  echo "note: without s3rver the replicas share the model and data folders (as on a shared volume)"
fi
"$ganctl" local make-demo --out "$work/base-models" --resolution 32 > /dev/null 2>&1
declare -a pids addrs
trap 'for p in "${pids[@]}"; do kill -CONT "$p" 2> /dev/null || true; kill -9 "$p" 2> /dev/null || true; done; s3rver_stop; cleanup' EXIT
replica() {  # N
  local data="$work/shared" models="$work/models" shared_files=()
  if [ "$own_folders" = 1 ]; then
    data="$work/data$1" models="$work/models$1"
    shared_files=(--artifact_store s3://ganserve/replicas --shared_sync_seconds 1)
    [ -d "$models" ] || cp -r "$work/base-models" "$models"
  fi
  "$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$data" "${shared_files[@]}" \
    --model_repository "$models" --device cpu --job_store postgresql:// --worker_id "replica$1" \
    --lease_seconds 2 --lease_renew_seconds 0.25 --job_poll_seconds 0.2 --job_retry_backoff_seconds 0 \
    --checkpoint_every 5 2> "$work/replica$1.log" &
  pids[$1]=$!
  addrs[$1]=127.0.0.1:$(server_port "$work/replica$1.log")
  for _ in $(seq 1 100); do "$ganctl" --server "${addrs[$1]}" health > /dev/null 2>&1 && break; sleep 0.2; done
}
for i in 1 2 3; do replica "$i"; done
sql() { psql -tAc "$1"; }
# adapt_bg REPLICA REQUEST_ID ITERATIONS: an adaptation submitted there, not waited for.
adapt_bg() {
  "$ganctl" --server "${addrs[$1]}" --timeout 0 adapt --model demo --from photo --to sketch --iterations "$3" \
    --request-id "$2" --name "demo-$2" --out "$work/out-$2" > "$work/$2.out" 2>&1 &
}
job_of() { sql "SELECT id FROM jobs WHERE request_id = '$1'"; }
# submitted REQUEST_ID: the id of the job adapt_bg submitted (waits up to 20 s).
submitted() {
  local j=""
  for _ in $(seq 1 100); do j=$(job_of "$1"); [ -n "$j" ] && break; sleep 0.2; done
  [ -n "$j" ] || { echo "FAIL: no job for $1: $(tail -3 "$work/$1.out")" >&2; exit 1; }
  echo "$j"
}
# wait_sql QUERY EXPECTED SECONDS WHAT
wait_sql() {
  for _ in $(seq 1 $(( $3 * 5 ))); do [ "$(sql "$1")" = "$2" ] && return 0; sleep 0.2; done
  fail "$4: '$1' gave '$(sql "$1")', not '$2'"
}
# start_job REPLICA REQUEST_ID ITERATIONS MIN_STEP: an adaptation submitted there and
# past MIN_STEP; sets id (the job) and holder (the number of the replica running it).
start_job() {
  adapt_bg "$1" "$2" "$3"
  id=$(submitted "$2")
  wait_sql "SELECT step >= $4 FROM jobs WHERE id = '$id'" t 60 "job $2 never got going"
  holder=$(sql "SELECT substr(worker, 8) FROM jobs WHERE id = '$id'")
}
gapless() {  # JOB: events 1..N without holes
  [ "$(sql "SELECT count(*) = max(seq) AND min(seq) = 1 FROM job_events WHERE job_id = '$1'")" = t ] \
    || fail "job $1 has gaps in its events"
}
for n in 1 2 3 4 5 6; do adapt_bg $(( (n - 1) % 3 + 1 )) "many$n" 6; done
wait_sql "SELECT count(*) FROM jobs WHERE state = 3" 6 120 "six jobs over three replicas"
[ "$(sql "SELECT count(*) FROM jobs WHERE attempt = 1")" = 6 ] || fail "a job was claimed twice"
[ "$(sql "SELECT count(DISTINCT worker) FROM jobs")" -ge 2 ] || fail "one replica ran every job"
for n in 1 2 3 4 5 6; do gapless "$(job_of "many$n")"; done

step "idempotent resubmit to another replica"
"$ganctl" --server "${addrs[3]}" --timeout 0 adapt --model demo --from photo --to sketch --iterations 6 \
  --request-id many1 --name demo-many1 --out "$work/again" > "$work/again.out" 2>&1 || fail "resubmit failed"
[ "$(sql "SELECT count(*) FROM jobs")" = 6 ] || fail "a resubmitted request made a new job"

step "a watcher on one replica follows a job running on another; kill -9 of its holder mid-job"
start_job 1 killed 60 8
watcher=$(( holder % 3 + 1 ))
"$ganctl" --server "${addrs[$watcher]}" --timeout 0 --json jobs watch "$id" > "$work/watch.json" 2>&1 &
watch_pid=$!
sleep 1
kill -9 "${pids[$holder]}"
wait_sql "SELECT state FROM jobs WHERE id = '$id'" 3 120 "the killed replica's job was not finished by another"
[ "$(sql "SELECT attempt FROM jobs WHERE id = '$id'")" = 2 ] || fail "the job was not claimed exactly twice"
new=$(sql "SELECT substr(worker, 8) FROM jobs WHERE id = '$id'")
[ "$new" != "$holder" ] || fail "the dead replica finished the job"
grep -q "job $id resuming from its checkpoint at step [1-9]" "$work/replica$new.log" \
  || fail "replica $new did not resume from the checkpoint: $(grep "$id" "$work/replica$new.log" | tail -3)"
wait "$watch_pid" || fail "the watcher on replica $watcher failed: $(tail -3 "$work/watch.json")"
grep -q "SUCCEEDED" "$work/watch.json" || fail "the watcher did not see the end: $(tail -2 "$work/watch.json")"
gapless "$id"
replica "$holder"  # back to three; it died before the model existed
"$ganctl" --server "${addrs[$holder]}" generate --model demo-killed --seeds 1 --out "$work/render" > /dev/null \
  || fail "the adapted model does not render on replica $holder"
if [ "$own_folders" = 1 ]; then
  grep -q "model 'demo-killed' fetched from s3://ganserve/replicas" "$work/replica$holder.log" \
    || fail "replica $holder did not fetch the model from the object store"
  [ ! -e "$work/data$new/checkpoints/$id.ckpt.safetensors" ] || fail "the finished job left its checkpoint"
fi

step "kill -STOP past the lease: another replica takes over, the stopped one publishes nothing"
start_job 2 paused 60 6
kill -STOP "${pids[$holder]}"
wait_sql "SELECT worker <> 'replica$holder' AND worker <> '' FROM jobs WHERE id = '$id'" t 30 "nobody took over"
kill -CONT "${pids[$holder]}"
wait_sql "SELECT state FROM jobs WHERE id = '$id'" 3 120 "the job taken over did not finish"
for _ in $(seq 1 25); do grep -q "job $id: lease lost" "$work/replica$holder.log" && break; sleep 0.2; done
grep -q "job $id: lease lost" "$work/replica$holder.log" \
  || fail "the resumed replica did not stop the job it lost: $(grep "$id" "$work/replica$holder.log" | tail -3)"
gapless "$id"

step "the database drops every connection mid-job: nothing is lost"
start_job 3 dropped 40 4
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()" > /dev/null
wait_sql "SELECT state FROM jobs WHERE id = '$id'" 3 120 "the job did not survive the dropped connections"
gapless "$id"

if [ "$own_folders" = 1 ]; then
  step "the object store dies mid-job and comes back: readiness follows it, nothing is lost"
  start_job 2 s3restart 300 4
  s3rver_stop
  for _ in $(seq 1 75); do "$ganctl" --server "${addrs[1]}" health > /dev/null 2>&1 || break; sleep 0.2; done
  "$ganctl" --server "${addrs[1]}" health > /dev/null 2>&1 && fail "replica 1 stayed ready without its object store"
  sleep 2  # a checkpoint or two fails to upload meanwhile
  s3rver_start "$work/s3" "$s3rver_port"
  wait_sql "SELECT state FROM jobs WHERE id = '$id'" 3 180 "the job did not survive the object store's restart"
  grep -q "job $id: the checkpoint at step [0-9]* did not reach s3://" "$work/replica$holder.log" \
    || fail "no checkpoint upload failed during the outage (the job ended too soon?)"
  for _ in $(seq 1 75); do "$ganctl" --server "${addrs[1]}" health > /dev/null 2>&1 && break; sleep 0.2; done
  "$ganctl" --server "${addrs[1]}" health > /dev/null 2>&1 || fail "replica 1 did not turn ready again"
  other=$(( holder % 3 + 1 ))
  "$ganctl" --server "${addrs[$other]}" generate --model demo-s3restart --seeds 1 --out "$work/render2" > /dev/null \
    || fail "the model made across the restart does not render on replica $other"
  grep -q "model 'demo-s3restart' fetched from" "$work/replica$other.log" \
    || fail "replica $other did not fetch the model from the object store"

  step "a model deleted on one replica goes from the others"
  "$ganctl" --server "${addrs[$other]}" models delete demo-s3restart > /dev/null || fail "delete on replica $other"
  for r in 1 2 3; do
    for _ in $(seq 1 50); do grep -q "model 'demo-s3restart' was deleted from" "$work/replica$r.log" && break; sleep 0.2; done
    [ "$r" = "$other" ] && continue
    grep -q "model 'demo-s3restart' was deleted from" "$work/replica$r.log" || fail "replica $r kept the deleted model"
    "$ganctl" --server "${addrs[$r]}" generate --model demo-s3restart --seeds 1 --out "$work/gone" > /dev/null 2>&1 \
      && fail "replica $r still renders the deleted model"
  done
  gapless "$id"
fi

step "an inversion made on one replica renders on the others"
"$ganctl" --server "${addrs[1]}" generate --model demo --seeds 3 --out "$work/photo" > /dev/null || fail "generate"
"$ganctl" --server "ipv4:${addrs[1]},${addrs[2]},${addrs[3]}" --timeout 0 invert "$work/photo/seed3.png" \
  --model demo --steps 10 --preview-every 0 --out "$work/inv" > "$work/inv.out" 2> "$work/inv.err" \
  || fail "invert: $(cat "$work/inv.err")"
inv=$(grep '^inv-' "$work/inv.out")
[ -n "$inv" ] || fail "invert printed no inversion id"
for r in 1 2 3; do
  "$ganctl" --server "${addrs[$r]}" generate --model demo --inversion "$inv" --out "$work/inv$r" > /dev/null 2>&1 \
    || fail "inversion $inv does not render on replica $r"
done
[ "$own_folders" = 1 ] && [ "$(ls "$work"/data*/inversions/"$inv".safetensors | wc -l)" -lt 3 ] \
  && fail "the inversion did not reach every replica's data folder"

step "cancel on one replica stops the job where it runs"
start_job 1 cancelled 400 2
other=$(( holder % 3 + 1 ))
"$ganctl" --server "${addrs[$other]}" jobs cancel "$id" > /dev/null || fail "cancel on replica $other failed"
wait_sql "SELECT state FROM jobs WHERE id = '$id'" 5 5 "the job did not stop within a few lease renewals"
[ "$(sql "SELECT step < 400 FROM jobs WHERE id = '$id'")" = t ] || fail "the cancelled job ran to the end"
gapless "$id"
echo "postgres: all steps passed"
