#!/usr/bin/env bash
# Installs every Debian bookworm package ganserve needs to build, test and run.
# Idempotent: packages already present are skipped by apt. Used by the README,
# .ci/run and the Dockerfile's CPU build stage.
#
#   scripts/install-deps.sh   (build, test and run dependencies)
#   GANSERVE_EXTERNAL_TORCH=1 scripts/install-deps.sh
#                             (the same without Debian's CPU LibTorch and PyTorch, for
#                              builds against the official CUDA LibTorch: Dockerfile)
#   GANSERVE_BUILD_ONLY=1 scripts/install-deps.sh
#                             (without the servers and browsers only tests use: image builds)
set -euo pipefail

build_pkgs=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates curl
  libtorch-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libspdlog-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libpq-dev libspng-dev zlib1g-dev libturbojpeg0-dev libssl-dev
  libcli11-dev nlohmann-json3-dev libutf8proc-dev libcpp-httplib-dev libcurl4-openssl-dev
  # Face detection and landmarks (FFHQ alignment); its libdlib-data brings dlib's 68-point
  # shape predictor (/usr/share/dlib), which fetch-weights.sh installs as a model.
  libdlib-dev
  # Go stubs from the proto (tests/proto).
  protoc-gen-go protoc-gen-go-grpc
  # Optimized BLAS: LibTorch takes libblas.so.3 from the alternatives system and the
  # reference BLAS it otherwise gets is ~20x slower. The OpenMP build shares LibTorch's
  # OpenMP pool instead of oversubscribing the cores.
  libopenblas0-openmp
  # Test fixtures are generated with Debian's PyTorch (never used by the product).
  python3 python3-torch python3-numpy
  # The Python client package (clients/python) and its test: pip into a venv over
  # Debian's grpcio, protobuf and Pillow.
  python3-grpcio python3-protobuf python3-pil python3-venv python3-setuptools python3-pip
  # The browser console's test drives Debian's Chromium (tests/console).
  chromium
  # libFuzzer targets (tests/fuzz); the house style checks (tests/style).
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
  # promtool checks the metric names and alert rules in the tests; yamllint and openssl
  # the deployment manifests and the TLS tests.
  prometheus yamllint openssl
  # A throwaway PostgreSQL cluster (pg_virtualenv) for the PostgreSQL job store's tests.
  postgresql-15 postgresql-common
)

# Only tests use these: a browser, a PostgreSQL server, the Python client's packages.
test_only_pkgs=(python3-grpcio python3-protobuf python3-pil python3-venv python3-setuptools python3-pip chromium
  postgresql-15 postgresql-common)
if [ -n "${GANSERVE_BUILD_ONLY:-}" ]; then
  kept=()
  for p in "${build_pkgs[@]}"; do
    [[ " ${test_only_pkgs[*]} " == *" $p "* ]] || kept+=("$p")
  done
  build_pkgs=("${kept[@]}")
fi

if [ -n "${GANSERVE_EXTERNAL_TORCH:-}" ]; then
  kept=()
  for p in "${build_pkgs[@]}"; do
    case "$p" in libtorch-dev|python3-torch) ;; *) kept+=("$p") ;; esac
  done
  build_pkgs=("${kept[@]}")
fi

missing=()
for p in "${build_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#build_pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
