# Shared by the e2e scripts (source it after setting -euo pipefail): a work folder
# removed on exit together with the server the script started (its PID in server_pid),
# and the fail/step helpers. fail prints the server log's tail.
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && tail -20 "$work/server.log"; exit 1; }
step() { echo "--- $*"; }
