#!/usr/bin/env bash
# The artifact store contract and the S3 client against s3rver on loopback (an S3
# server with multipart uploads that checks access keys; it does not verify SigV4
# signatures, which tests/core/storage/sigv4_test.cc checks against AWS's suite),
# installed from npm with the lockfile beside this script. Exit 77 (skipped) without node/npm or when
# npm cannot install it.
# Usage: s3_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
command -v node > /dev/null && command -v npm > /dev/null || { echo "skipped: node/npm not installed"; exit 77; }
tools="$build/npm-s3rver"
if [ ! -x "$tools/node_modules/.bin/s3rver" ]; then
  mkdir -p "$tools"
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  if ! (cd "$tools" && timeout 300 npm ci --no-audit --no-fund --silent > install.log 2>&1); then
    echo "skipped: npm could not install s3rver"; tail -5 "$tools/install.log"; exit 77
  fi
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tools/node_modules/.bin/s3rver" --directory "$work/s3" --address 127.0.0.1 --port "$port" --silent \
  > "$work/s3rver.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
# s3rver's built-in account.
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" GANSERVE_TEST_S3_URL="s3://ganserve-test/artifacts" GANSERVE_S3_PART_MB=5
"$build/tests/storage_test" --gtest_filter='*/s3:S3ClientTest.*' || { tail -20 "$work/s3rver.log"; exit 1; }
