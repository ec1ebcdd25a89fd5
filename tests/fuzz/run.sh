#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a fixed number
# of inputs from a fixed seed on its seed corpus (tests/fuzz/corpus/<target>). Runs are
# close to repeatable, not exactly (the order files are read from the corpus folder
# differs between checkouts), so a CI failure is a real finding: keep its artifact in
# the corpus as a regression case.
# SECONDS_PER_TARGET caps each run as a safety net (a capped run is a prefix of the
# same sequence).
#   tests/fuzz/run.sh OUT_DIR [SECONDS_PER_TARGET [BUILD_DIR]]
# The targets are CMake targets (tests/fuzz/CMakeLists.txt) built in OUT_DIR/build with
# clang, ASan and UBSan. With BUILD_DIR given (the main build; CI passes it), also the
# operation-spec target (fuzz_requests.cc), which needs the whole core and LibTorch.
# By hand, explore further: FUZZ_SEED=N FUZZ_RUNS=-1 FUZZ_KEEP_CORPUS=1 tests/fuzz/run.sh /tmp/fz 600
# Crashes are kept as OUT_DIR/crash-*; add them to the corpus as regression cases.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
secs=${2:-60}
# Inputs per target: about 15 s each on a 2-core CI machine (docs/benchmarks.md).
declare -A runs=([npy]=2000000 [torch]=400000 [safetensors]=800000 [zip]=2000000 [image]=3000000 [tokenizer]=150000
                [requests]=400000)
build=${3:-}
mkdir -p "$out"
cxx=$(command -v clang++-14 || command -v clang++ || true)
cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cxx" ] || { echo "clang++ not installed: fuzzing skipped (scripts/install-deps.sh installs clang-14)"; exit 77; }
# The project's CMake targets, built again with clang and the sanitizers. The request
# target needs the whole core (LibTorch included): only with BUILD_DIR (a finished
# build, i.e. a full run rather than a parser-only one).
targets=(npy torch safetensors zip image tokenizer)
[ -n "$build" ] && targets+=(requests)
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR="$src" CCACHE_NOHASHDIR=1
if [ ! -f "$out/build/build.ninja" ]; then
  cmake -S "$src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
    "${launcher[@]}" -DGANSERVE_BUILD_TESTS=OFF -DGANSERVE_BUILD_BENCH=OFF -DGANSERVE_FUZZ=ON -DGANSERVE_WERROR=OFF \
    -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
    > "$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
fi
cmake --build "$out/build" --target $(printf 'fuzz_%s ' "${targets[@]}") > "$out/build.log" 2>&1 \
  || { grep -E "error|Error" "$out/build.log" | head -20; exit 1; }
status=0
if [ -n "$build" ]; then
  mkdir -p "$out/corpus_requests_seed"
  FUZZ_WRITE_CORPUS="$out/corpus_requests_seed" "$out/build/tests/fuzz/fuzz_requests" > /dev/null 2>&1 || true
fi
for t in "${targets[@]}"; do
  bin="$out/build/tests/fuzz/fuzz_$t"
  corpus="$out/corpus_$t"
  # Start from the checked-in corpus each time (repeatable); FUZZ_KEEP_CORPUS=1 grows it.
  [ -n "${FUZZ_KEEP_CORPUS:-}" ] || rm -rf "$corpus"
  mkdir -p "$corpus"
  cp -n "$src/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  if [ "$t" = requests ]; then cp -n "$out/corpus_requests_seed"/* "$corpus"/ 2>/dev/null || true; fi
  n=${FUZZ_RUNS:-${runs[$t]}}
  echo "fuzz_$t: $n inputs (cap ${secs} s)"
  mkdir -p "$out/artifacts_$t"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$bin" "$corpus" -runs="$n" -max_total_time="$secs" \
    -seed="${FUZZ_SEED:-1}" -reload=0 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/artifacts_$t/" > "$out/fuzz_$t.log" 2>&1
  rc=$?
  set -e
  grep -E "stat::number_of_executed_units|SUMMARY" "$out/fuzz_$t.log" || true
  if [ "$rc" != 0 ]; then
    echo "fuzz_$t FAILED (exit $rc): $(ls "$out/artifacts_$t")"
    grep -E "ERROR|runtime error" "$out/fuzz_$t.log" | head -5
    status=1
  fi
done
exit $status
