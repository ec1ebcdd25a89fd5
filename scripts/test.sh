#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds, and runs every test (unit and e2e).
#   scripts/test.sh            all tests
#   scripts/test.sh -L unit    only one ctest label (unit | e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
bash scripts/build.sh
echo "setup and build took $(( $(date +%s) - start )) s"
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
