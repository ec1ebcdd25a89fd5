#!/usr/bin/env bash
# Builds the torch-free unit tests (the job engine and its SQLite store, the device
# executor's queue, the byte parsers) with clang under AddressSanitizer +
# UndefinedBehaviorSanitizer (CI) or ThreadSanitizer (by hand), and runs them. LibTorch
# is not instrumented, so model code is covered by the fuzz targets instead.
#
# ThreadSanitizer needs an instrumented Abseil: Debian's libabsl is built without it, so
# absl::Mutex's synchronisation would be invisible to TSan and every guarded access
# reported. The tsan variant therefore builds the installed libabsl-dev version's
# sources (the .orig tarball from deb.debian.org, cached in OUT_DIR) with
# -fsanitize=thread and links against that.
#   tests/sanitize/run.sh OUT_DIR [asan|tsan ...]      (default: asan tsan)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift || true
variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=(asan tsan)
mkdir -p "$out"
cxx=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$cxx" ] || { echo "clang++ not installed: sanitizer builds skipped (scripts/install-deps.sh installs clang-14)"; exit 77; }
sources=(core/util/tensor_data.cc core/util/mapped_file.cc core/util/file_util.cc core/util/np_random.cc
         core/io/npy.cc core/io/zip.cc core/io/image_codec.cc
         core/jobs/sqlite_job_store.cc core/jobs/job_engine.cc core/runtime/device_executor.cc
         tests/core/jobs/job_engine_test.cc tests/core/jobs/sqlite_job_store_test.cc
         tests/core/io/npy_test.cc tests/core/io/zip_test.cc tests/core/io/image_codec_test.cc)
# Abseil built with ThreadSanitizer, from the sources of the installed version.
tsan_absl() {
  local dir=$out/absl-tsan
  if [ ! -f "$dir/.built" ]; then
    local ver
    ver=$(dpkg-query -W -f='${Version}' libabsl-dev | sed 's/-[^-]*$//')
    mkdir -p "$dir/src"
    curl -fsSL "http://deb.debian.org/debian/pool/main/a/abseil/abseil_${ver}.orig.tar.gz" -o "$dir/src.tar.gz" \
      || { echo "cannot fetch the Abseil $ver sources for the TSan build"; return 1; }
    tar -xzf "$dir/src.tar.gz" -C "$dir/src" --strip-components=1
    cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_STANDARD=17 \
      -DCMAKE_C_COMPILER="$(command -v clang-14 || command -v clang)" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread -DABSL_PROPAGATE_CXX_STD=ON \
      -DBUILD_TESTING=OFF > "$dir/configure.log" 2>&1 || { tail -20 "$dir/configure.log"; return 1; }
    cmake --build "$dir/build" --target synchronization status statusor strings time \
      > "$dir/build.log" 2>&1 || { tail -20 "$dir/build.log"; return 1; }
    touch "$dir/.built"
  fi
}
libs="$(pkg-config --libs absl_status absl_statusor absl_strings absl_synchronization absl_time spng libturbojpeg zlib sqlite3 spdlog fmt) -lgtest -lgtest_main -lpthread"
status=0
for v in "${variants[@]}"; do
  case "$v" in
    asan) san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer) ;;
    tsan) san=(-fsanitize=thread) ;;
    *) echo "unknown variant $v"; exit 2 ;;
  esac
  absl_inc=()
  vlibs=$libs
  if [ "$v" = tsan ]; then
    tsan_absl || { status=1; continue; }
    absl_inc=(-I"$out/absl-tsan/src")
    # The instrumented static Abseil replaces Debian's shared one.
    vlibs="-Wl,--start-group $(find "$out/absl-tsan/build" -name 'libabsl_*.a' | tr '\n' ' ') -Wl,--end-group"
    vlibs+=" $(pkg-config --libs spng libturbojpeg zlib sqlite3 spdlog fmt) -lgtest -lgtest_main -lpthread"
  fi
  flags=(-std=c++17 -O1 -g "${san[@]}" "${absl_inc[@]}" -I"$src" -DSPDLOG_FMT_EXTERNAL -DSPDLOG_COMPILED_LIB
         -DGANSERVE_SOURCE_DIR="\"$src\"" -DGANSERVE_BINARY_DIR="\"$out\"")
  objs=()
  for s in "${sources[@]}"; do
    o="$out/$v/$(echo "$s" | tr / _).o"
    mkdir -p "$out/$v"
    if [ ! -f "$o" ] || [ "$src/$s" -nt "$o" ]; then "$cxx" "${flags[@]}" -c "$src/$s" -o "$o"; fi
    objs+=("$o")
  done
  bin="$out/$v/unit_tests"
  "$cxx" "${flags[@]}" "${objs[@]}" $vlibs -o "$bin"
  echo "== $v: $(basename "$bin")"
  set +e
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$src/tests/sanitize/tsan.supp" \
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
