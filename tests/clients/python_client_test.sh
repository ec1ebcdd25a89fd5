#!/usr/bin/env bash
# The Python client package (clients/python) installed with pip into a fresh virtual
# environment (Debian's grpcio, protobuf, numpy and Pillow through system site packages;
# stubs generated from the proto by the package build) and driven against a real server.
# Usage: python_client_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/lib.sh"
py=/usr/bin/python3
if ! "$py" -c 'import grpc, google.protobuf, numpy, PIL, venv' 2> /dev/null; then
  echo "SKIP: python3-grpcio, python3-protobuf, python3-numpy, python3-pil or python3-venv" \
    "missing (scripts/install-deps.sh installs them)"
  exit 77
fi

step "pip install clients/python into a virtual environment"
"$py" -m venv --system-site-packages "$work/venv"
# A copy, so the build writes nothing into the source tree.
mkdir -p "$work/src/clients"
cp -r "$src/clients/python" "$work/src/clients/python"
rm -rf "$work/src/clients/python/ganserve_client/_proto" "$work/src/clients/python/build"
GANSERVE_PROTO_DIR="$src/proto" "$work/venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps \
  "$work/src/clients/python" > "$work/pip.log" 2>&1 || { cat "$work/pip.log"; fail "pip install"; }
(cd "$work" && "$work/venv/bin/python" -c 'import ganserve_client, sys; sys.exit("/venv/" not in ganserve_client.__file__)') \
  || fail "ganserve_client is not imported from the virtual environment"

step "start ganserve on the demo pack"
"$build/client/ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
"$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --data_dir "$work/data" \
  --model_repository "$work/models" --device cpu 2> "$work/server.log" &
server_pid=$!
port=$(server_port "$work/server.log")

(cd "$work" && "$work/venv/bin/python" "$src/tests/clients/python_client_flow.py" "127.0.0.1:$port" "$work") \
  || fail "python client flow"
(cd "$work" && "$work/venv/bin/python" "$src/clients/python/examples/quickstart.py" "127.0.0.1:$port" "$work/example") \
  || fail "examples/quickstart.py"
[ -s "$work/example/grid.png" ] || fail "the example wrote no grid"
