#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a fixed number
# of inputs from a fixed seed on its seed corpus (tests/fuzz/corpus/<target>). Runs are
# close to repeatable, not exactly (the order files are read from the corpus folder
# differs between checkouts), so a CI failure is a real finding: keep its artifact in
# the corpus as a regression case.
# SECONDS_PER_TARGET caps each run as a safety net (a capped run is a prefix of the
# same sequence).
#   tests/fuzz/run.sh OUT_DIR [SECONDS_PER_TARGET [BUILD_DIR]]
# With BUILD_DIR (a finished CMake build), also the request-validation target
# (fuzz_requests.cc): the server's validation sources instrumented, linked against the
# build's core libraries and LibTorch.
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
[ -n "$cxx" ] || { echo "clang++ not installed: fuzzing skipped (scripts/install-deps.sh installs clang-14)"; exit 77; }
sources=(core/util/tensor_data.cc core/util/mapped_file.cc core/util/file_util.cc core/util/np_random.cc
         core/io/npy.cc core/io/zip.cc core/io/image_codec.cc
         core/checkpoint/pickle.cc core/checkpoint/torch_file.cc core/checkpoint/safetensors.cc
         core/models/clip/text_clean.cc core/models/clip/tokenizer.cc core/models/clip/random_init.cc)
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I"$src")
libs=$(pkg-config --libs absl_status absl_statusor absl_strings absl_synchronization spng libturbojpeg libutf8proc zlib)
# The shared sources once, then one link per target.
objs=()
for s in "${sources[@]}"; do
  o="$out/$(echo "$s" | tr / _).o"
  if [ ! -f "$o" ] || [ "$src/$s" -nt "$o" ]; then "$cxx" "${flags[@]}" -c "$src/$s" -o "$o"; fi
  objs+=("$o")
done
status=0
targets=(npy torch safetensors zip image tokenizer)
if [ -n "$build" ] && [ -f "$build/core/libganserve_registry.a" ]; then
  # Request validation: server sources compiled here, core from the CMake build.
  rflags=("${flags[@]}" -I"$build" -isystem /usr/include/torch/csrc/api/include -DSPDLOG_FMT_EXTERNAL)
  robjs=()
  for s in server/generate_request.cc server/edit_request.cc server/adapt_job.cc server/invert_job.cc \
           server/edit_stats_job.cc server/convert.cc; do
    o="$out/req_$(echo "$s" | tr / _).o"
    if [ ! -f "$o" ] || [ "$src/$s" -nt "$o" ]; then "$cxx" "${rflags[@]}" -c "$src/$s" -o "$o"; fi
    robjs+=("$o")
  done
  core_libs=("$build"/core/libganserve_*.a)  # one link group: order does not matter
  "$cxx" "${rflags[@]}" -fsanitize=fuzzer "$src/tests/fuzz/fuzz_requests.cc" "${robjs[@]}" \
    -Wl,--start-group "${core_libs[@]}" "$build/proto/libganserve_proto.a" -Wl,--end-group \
    -L/usr/lib/x86_64-linux-gnu -ltorch -ltorch_cpu -lc10 \
    $(pkg-config --libs protobuf absl_status absl_statusor absl_strings absl_synchronization absl_time spdlog fmt \
      sqlite3 spng libturbojpeg libutf8proc zlib) -lpthread -o "$out/fuzz_requests"
  mkdir -p "$out/corpus_requests_seed"
  FUZZ_WRITE_CORPUS="$out/corpus_requests_seed" "$out/fuzz_requests" > /dev/null 2>&1 || true
  targets+=(requests)
else
  echo "fuzz_requests: skipped (no BUILD_DIR with the core libraries given)"
fi
for t in "${targets[@]}"; do
  up=$(echo "$t" | tr a-z A-Z)
  bin="$out/fuzz_$t"
  if [ "$t" != requests ]; then
    "$cxx" "${flags[@]}" -fsanitize=fuzzer -DGANSERVE_FUZZ_"$up" "$src/tests/fuzz/fuzz_targets.cc" "${objs[@]}" $libs -o "$bin"
  fi
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
