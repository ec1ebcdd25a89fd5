# A loopback S3 server for the tests (source it): s3rver from npm, pinned by the
# lockfile beside this file, installed once per build folder. s3rver checks access keys
# and does multipart uploads; it does not verify SigV4 signatures (sigv4_test.cc checks
# the signer against AWS's suite).
#   s3rver_install BUILD_DIR      0, or 77 (skip) without node/npm or when npm fails
#   s3rver_start DIR [PORT]       starts it (bucket "ganserve" made), data in DIR; sets
#                                 s3rver_pid and s3rver_port and exports the AWS_* twins
#   s3rver_stop                   kill -9 (as a crash); data stays in DIR
s3rver_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
s3rver_bin=""
s3rver_pid=""
s3rver_port=""
s3rver_install() {
  command -v node > /dev/null && command -v npm > /dev/null || { echo "skipped: node/npm not installed"; return 77; }
  local tools="$1/npm-s3rver"
  mkdir -p "$tools"
  # Tests running at once install it once: the others wait for the lock.
  if ! (
    flock 9
    [ -x "$tools/node_modules/.bin/s3rver" ] && exit 0
    cp "$s3rver_here/package.json" "$s3rver_here/package-lock.json" "$tools/"
    cd "$tools" && timeout 300 npm ci --no-audit --no-fund --silent > install.log 2>&1
  ) 9> "$tools.lock"; then
    echo "skipped: npm could not install s3rver"; tail -5 "$tools/install.log"; return 77
  fi
  s3rver_bin="$tools/node_modules/.bin/s3rver"
}
s3rver_start() {
  mkdir -p "$1"
  s3rver_port=${2:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  "$s3rver_bin" --directory "$1" --address 127.0.0.1 --port "$s3rver_port" --silent --configure-bucket ganserve \
    >> "$1.log" 2>&1 &
  s3rver_pid=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$s3rver_port/" && break
    sleep 0.1
  done
  # s3rver's built-in account.
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3rver_port"
}
s3rver_stop() {
  if [ -n "$s3rver_pid" ]; then
    kill -9 "$s3rver_pid" 2> /dev/null || true
    wait "$s3rver_pid" 2> /dev/null || true
  fi
  s3rver_pid=""
}
