#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds, and runs every test (unit and e2e).
#   scripts/test.sh            all tests
#   scripts/test.sh -L unit    only one ctest label (unit | e2e)
# A full run then repeats the unit tests on other CPU kernels (non-vectorised ATen,
# OpenBLAS's Sandybridge kernels, one thread), so an assertion that only holds for one
# CPU's kernels fails here instead of on the next machine.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
bash scripts/build.sh
echo "setup and build took $(( $(date +%s) - start )) s"
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
if [ "$#" -eq 0 ]; then
  echo "unit tests again with ATEN_CPU_CAPABILITY=default OPENBLAS_CORETYPE=Sandybridge OMP_NUM_THREADS=1"
  ATEN_CPU_CAPABILITY=default OPENBLAS_CORETYPE=Sandybridge OMP_NUM_THREADS=1 \
    ctest --output-on-failure -j "$(nproc)" -L unit
fi
