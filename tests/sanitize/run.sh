#!/usr/bin/env bash
# Builds the torch-free unit tests (the job engine and its SQLite store, the device
# executor, the byte parsers) with clang under AddressSanitizer + UndefinedBehaviorSanitizer
# and ThreadSanitizer, and runs them. They are the project's own CMake targets, configured
# again in OUT_DIR/<variant> with the sanitizer flags. LibTorch is not instrumented, so
# model code is covered by the fuzz targets instead.
#
# ThreadSanitizer needs an instrumented Abseil: Debian's libabsl is built without it, so
# absl::Mutex's synchronisation would be invisible to TSan and every guarded access
# reported. The tsan variant therefore builds the installed libabsl-dev version's sources
# (the .orig tarball from deb.debian.org) with -fsanitize=thread once per machine, installs
# it under the cache folder ($GANSERVE_CACHE_DIR, else ~/.cache/ganserve), and the CMake
# build finds that Abseil first.
#   tests/sanitize/run.sh OUT_DIR [asan|tsan ...]      (default: asan tsan)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift || true
variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=(asan tsan)
mkdir -p "$out"
cxx=$(command -v clang++-14 || command -v clang++ || true)
cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cxx" ] || { echo "clang++ not installed: sanitizer builds skipped (scripts/install-deps.sh installs clang-14)"; exit 77; }
targets=(io_test jobs_test job_engine_test executor_test)
cache=${GANSERVE_CACHE_DIR:-$HOME/.cache/ganserve}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR="$src" CCACHE_NOHASHDIR=1

# Abseil built with ThreadSanitizer from the sources of the installed version; prints
# its install prefix.
tsan_absl() {
  local ver dir
  ver=$(dpkg-query -W -f='${Version}' libabsl-dev | sed 's/-[^-]*$//')
  dir=$cache/absl-tsan-$ver
  if [ ! -f "$dir/.installed" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/src"
    curl -fsSL "http://deb.debian.org/debian/pool/main/a/abseil/abseil_${ver}.orig.tar.gz" -o "$dir/src.tar.gz" \
      || { echo "cannot fetch the Abseil $ver sources for the TSan build" >&2; return 1; }
    tar -xzf "$dir/src.tar.gz" -C "$dir/src" --strip-components=1
    cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_STANDARD=17 \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" \
      -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread -DABSL_PROPAGATE_CXX_STD=ON \
      -DABSL_ENABLE_INSTALL=ON -DCMAKE_INSTALL_PREFIX="$dir/install" -DBUILD_TESTING=OFF \
      > "$dir/configure.log" 2>&1 || { tail -20 "$dir/configure.log" >&2; return 1; }
    cmake --build "$dir/build" --target install > "$dir/build.log" 2>&1 || { tail -20 "$dir/build.log" >&2; return 1; }
    touch "$dir/.installed"
  fi
  echo "$dir/install"
}

status=0
for v in "${variants[@]}"; do
  extra=()
  case "$v" in
    asan) san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" ;;
    tsan)
      san="-fsanitize=thread"
      prefix=$(tsan_absl) || { status=1; continue; }
      extra=(-DCMAKE_PREFIX_PATH="$prefix")
      ;;
    *) echo "unknown variant $v"; exit 2 ;;
  esac
  bdir=$out/$v
  if [ ! -f "$bdir/build.ninja" ]; then
    cmake -S "$src" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
      "${launcher[@]}" "${extra[@]}" -DGANSERVE_BUILD_BENCH=OFF -DGANSERVE_WERROR=OFF \
      -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g $san" -DCMAKE_C_FLAGS_SANITIZE="-O1 -g $san" \
      > "$out/configure-$v.log" 2>&1 || { tail -20 "$out/configure-$v.log"; status=1; continue; }
  fi
  if ! cmake --build "$bdir" --target "${targets[@]}" > "$out/build-$v.log" 2>&1; then
    grep -E "error" "$out/build-$v.log" | head -20
    status=1
    continue
  fi
  for t in "${targets[@]}"; do
    echo "== $v: $t"
    set +e
    (cd "$bdir/tests" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$src/tests/sanitize/tsan.supp" \
      "./$t" --gtest_brief=1 > "$out/$v-$t.log" 2>&1)
    rc=$?
    set -e
    grep -E "^\[  (PASSED|FAILED)|tests ran|SUMMARY|WARNING: ThreadSanitizer" "$out/$v-$t.log" | head -20 || true
    if [ "$rc" != 0 ]; then
      echo "$v $t FAILED (exit $rc); the first report:"
      # A sanitizer report, else the failed assertions with their messages.
      if ! grep -E -m 1 -A 30 "ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error" "$out/$v-$t.log"; then
        if grep -q -E ": Failure$" "$out/$v-$t.log"; then
          grep -E -A 8 ": Failure$" "$out/$v-$t.log" | head -60 || true
        else
          tail -30 "$out/$v-$t.log"
        fi
      fi
      status=1
    fi
  done
done
exit $status
