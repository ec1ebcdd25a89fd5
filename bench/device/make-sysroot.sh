#!/usr/bin/env bash
# Unpacks the Debian packages the engine needs besides LibTorch (headers and shared
# libraries) into .sysroot/, so that bench/device/run.sh can build core/ and
# ganserve_bench on a machine that has a CUDA PyTorch but not these packages.
# Needs apt (Debian 12). Usage: bench/device/make-sysroot.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pkgs=(libabsl-dev libabsl20220623 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
  libspng-dev libspng0 libturbojpeg0-dev libturbojpeg0 libutf8proc-dev libutf8proc2 libsqlite3-dev
  libsqlite3-0 zlib1g-dev zlib1g libcli11-dev pkgconf-bin libpkgconf3 pkgconf)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "${pkgs[@]}")
rm -rf "$root/.sysroot"
mkdir -p "$root/.sysroot"
for f in "$tmp"/*.deb; do dpkg -x "$f" "$root/.sysroot"; done
# zlib's development link points at the absolute runtime path; keep it inside.
ln -sf ../../../lib/x86_64-linux-gnu/libz.so.1 "$root/.sysroot/usr/lib/x86_64-linux-gnu/libz.so"
du -sh "$root/.sysroot"
