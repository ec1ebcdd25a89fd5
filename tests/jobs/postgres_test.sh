#!/usr/bin/env bash
# The job store on PostgreSQL: a throwaway cluster from pg_virtualenv (postgresql-common;
# it works as root too) exporting the PG* variables, then
#  1. the job store contract (jobs_test, the same tests as SQLite's),
#  2. ganserve with --job_store postgresql:// on the demo pack: an adaptation, a restart
#     that still lists it, and a second server on the same database turned away.
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

step "ganserve on PostgreSQL: a job survives a restart; a second server is turned away"
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
# A second server on the same database while the first runs.
set +e
timeout 30 "$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data2" \
  --model_repository "$work/models" --device cpu --job_store postgresql:// > "$work/second.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] && grep -q "another ganserve runs the jobs of this PostgreSQL job store" "$work/second.log" \
  || fail "a second server on the same database was not refused (exit $rc): $(tail -3 "$work/second.log")"
kill "$server_pid"; wait "$server_pid" 2> /dev/null || true
start 3
addr=127.0.0.1:$(server_port "$work/server3.log")
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" jobs list | grep -q "adapt  succeeded" || fail "the job is gone after a restart"
echo "postgres: all steps passed"
