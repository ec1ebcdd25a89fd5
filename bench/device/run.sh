#!/usr/bin/env bash
# Builds the engine and ganserve_bench (GANSERVE_CORE_ONLY) against the PyTorch that
# python3 imports (e.g. a CUDA build), then runs the device scenarios and writes one
# JSON line per scenario to OUT_DIR/results.jsonl (and the logs beside it).
#
#   bench/device/make-sysroot.sh         # on a Debian 12 machine: packages into .sysroot/
#   bench/device/run.sh OUT_DIR [DEVICE] [SCENARIOS]  # on the machine to measure
#
# DEVICE defaults to cuda; SCENARIOS to bench/device/scenarios.txt (one line of
# ganserve_bench arguments per run).
#
# .sysroot/ (when present) supplies Abseil, spdlog, fmt, libspng, TurboJPEG, utf8proc,
# SQLite, zlib, CLI11, nlohmann-json and pkgconf; LibTorch comes from python3's torch.
# LibTorch from 2.11 on needs C++20, so the build uses it. TORCH_CMAKE_PREFIX overrides
# where LibTorch's CMake files are; CONFIGURE_ONLY=1 stops after cmake's configure.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: run.sh OUT_DIR [DEVICE]}"
device="${2:-cuda}"
scenarios="${3:-$root/bench/device/scenarios.txt}"
mkdir -p "$out"
log="$out/build.log"
{
  echo "== machine"
  uname -a
  (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true)
  nproc
  (command -v c++ g++ nvcc cmake ninja || true)
  (c++ --version | head -1 || true)
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
} >"$out/machine.txt" 2>&1
torch_prefix="${TORCH_CMAKE_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}"
sys="$root/.sysroot"
prefix="$torch_prefix"
if [[ -d "$sys" ]]; then
  prefix="$sys/usr;$torch_prefix"
  export LD_LIBRARY_PATH="$sys/usr/lib/x86_64-linux-gnu:$sys/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_LIBDIR="$sys/usr/lib/x86_64-linux-gnu/pkgconfig:$sys/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$sys"
  export PATH="$sys/usr/bin:$PATH"
fi
gen=()
keep_going=(-k)
if command -v ninja >/dev/null; then gen=(-G Ninja) && keep_going=(-k 0); fi
cuda_args=()
if command -v nvcc >/dev/null; then
  nvcc_path="$(command -v nvcc)"
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc_path" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc_path")")")
fi
build="$root/build-device"
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGANSERVE_CORE_ONLY=ON \
  -DGANSERVE_BUILD_TESTS=OFF -DGANSERVE_WERROR=OFF -DCMAKE_CXX_STANDARD=20 -DCMAKE_PREFIX_PATH="$prefix" \
  -DPKG_CONFIG_EXECUTABLE="$(command -v pkg-config || command -v pkgconf)" "${cuda_args[@]}" >"$log" 2>&1 ||
  { tail -60 "$log"; exit 1; }
[[ "${CONFIGURE_ONLY:-0}" == 1 ]] && exit 0
cmake --build "$build" --target ganserve_bench -j "$(nproc)" -- "${keep_going[@]}" >>"$log" 2>&1 ||
  { grep -E "error|Error" "$log" | head -60; exit 1; }
bench="$build/bench/ganserve_bench"
res="$out/results.jsonl"
: >"$res"
run() {
  echo "== $*" >&2
  "$bench" --device "$device" "$@" </dev/null >>"$res" 2>>"$out/bench.log" || echo "{\"failed\": \"$*\"}" >>"$res"
}
while read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  # shellcheck disable=SC2086
  run $line
done <"$scenarios"
cat "$res"
