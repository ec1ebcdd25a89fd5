#!/usr/bin/env bash
# Builds the torch-free unit tests (the job engine and its SQLite store, the device
# executor's queue, the byte parsers) with clang under AddressSanitizer +
# UndefinedBehaviorSanitizer (CI) or ThreadSanitizer (by hand), and runs them. LibTorch
# is not instrumented, so model code is covered by the fuzz targets instead.
#
# ThreadSanitizer needs an instrumented Abseil: Debian's libabsl is built without it, so
# absl::Mutex's synchronisation is invisible to TSan and every guarded access is
# reported (the first report is a condition evaluated by Mutex::UnlockSlow). Run the
# tsan variant against an Abseil built with -fsanitize=thread (ABSL_PREFIX=/path).
#   tests/sanitize/run.sh OUT_DIR [asan|tsan ...]      (default: asan)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift || true
variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=(asan)
mkdir -p "$out"
cxx=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$cxx" ] || { echo "clang++ not installed: sanitizer builds skipped (scripts/install-deps.sh installs clang-14)"; exit 77; }
sources=(core/util/tensor_data.cc core/util/mapped_file.cc core/util/file_util.cc core/util/np_random.cc
         core/io/npy.cc core/io/zip.cc core/io/image_codec.cc
         core/jobs/sqlite_job_store.cc core/jobs/job_engine.cc core/runtime/device_executor.cc
         tests/core/jobs/job_engine_test.cc tests/core/jobs/sqlite_job_store_test.cc
         tests/core/io/npy_test.cc tests/core/io/zip_test.cc tests/core/io/image_codec_test.cc)
absl_flags=()
if [ -n "${ABSL_PREFIX:-}" ]; then
  absl_flags=(-I"$ABSL_PREFIX/include" -L"$ABSL_PREFIX/lib" -Wl,-rpath,"$ABSL_PREFIX/lib")
fi
libs="$(pkg-config --libs absl_status absl_statusor absl_strings absl_synchronization absl_time spng libturbojpeg zlib sqlite3 spdlog fmt) -lgtest -lgtest_main -lpthread"
status=0
for v in "${variants[@]}"; do
  case "$v" in
    asan) san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer) ;;
    tsan) san=(-fsanitize=thread) ;;
    *) echo "unknown variant $v"; exit 2 ;;
  esac
  flags=(-std=c++17 -O1 -g "${san[@]}" "${absl_flags[@]}" -I"$src" -DSPDLOG_FMT_EXTERNAL -DSPDLOG_COMPILED_LIB
         -DGANSERVE_SOURCE_DIR="\"$src\"" -DGANSERVE_BINARY_DIR="\"$out\"")
  objs=()
  for s in "${sources[@]}"; do
    o="$out/$v/$(echo "$s" | tr / _).o"
    mkdir -p "$out/$v"
    if [ ! -f "$o" ] || [ "$src/$s" -nt "$o" ]; then "$cxx" "${flags[@]}" -c "$src/$s" -o "$o"; fi
    objs+=("$o")
  done
  bin="$out/$v/unit_tests"
  "$cxx" "${flags[@]}" "${objs[@]}" $libs -o "$bin"
  echo "== $v: $(basename "$bin")"
  set +e
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    "$bin" --gtest_brief=1 > "$out/$v/log.txt" 2>&1
  rc=$?
  set -e
  grep -E "^\[  (PASSED|FAILED)|tests ran|SUMMARY|WARNING: ThreadSanitizer" "$out/$v/log.txt" | head -20 || true
  if [ "$rc" != 0 ]; then
    echo "$v FAILED (exit $rc); the first report:"
    grep -E -m 1 -A 30 "ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error|FAILED" "$out/$v/log.txt" || tail -30 "$out/$v/log.txt"
    status=1
  fi
done
exit $status
