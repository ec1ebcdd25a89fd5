#!/usr/bin/env bash
# Configures and builds ganserve into build/ (Ninja, ccache when present).
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${GANSERVE_BUILD_TYPE:-RelWithDebInfo}
# ccache hits across checkouts in other folders (a CI clone reuses a developer's cache):
# paths under the repository are hashed relative to it.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
fi
cmake --build build -j "$(nproc)"
