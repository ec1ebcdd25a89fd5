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
source "$here/s3rver.sh"
s3rver_install "$build" || exit $?
work=$(mktemp -d)
cleanup() { s3rver_stop; rm -rf "$work"; }
trap cleanup EXIT
s3rver_start "$work/s3"
export GANSERVE_TEST_S3_URL="s3://ganserve-test/artifacts" GANSERVE_S3_PART_MB=5
"$build/tests/storage_test" --gtest_filter='*/s3:S3ClientTest.*' || { tail -20 "$work/s3.log"; exit 1; }
