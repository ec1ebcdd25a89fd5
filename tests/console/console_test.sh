#!/usr/bin/env bash
# The browser console against a real server on the demo pack, in headless Chromium
# (Debian's chromium, driven by playwright-core from npm). Saves the screenshot as
# BUILD/console.png. Exit 77 (skipped) without chromium, node or npm.
# Usage: console_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/lib.sh"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "skipped: $chromium not installed (scripts/install-deps.sh installs chromium)"; exit 77; }
command -v node > /dev/null && command -v npm > /dev/null || { echo "skipped: node/npm not installed"; exit 77; }
tools="$build/npm-console"
if [ ! -d "$tools/node_modules/playwright-core" ]; then
  mkdir -p "$tools"
  # playwright-core drives the installed Chromium; it downloads no browser.
  if ! timeout 300 npm install --prefix "$tools" --no-audit --no-fund --silent playwright-core@1 \
      > "$tools/install.log" 2>&1; then
    echo "skipped: npm could not install playwright-core"; tail -5 "$tools/install.log"; exit 77
  fi
fi

step "start ganserve with the HTTP gateway on the demo pack"
"$build/client/ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
"$build/server/ganserve" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --http_listen 127.0.0.1:0 \
  --data_dir "$work/data" --model_repository "$work/models" --device cpu 2> "$work/server.log" &
server_pid=$!
server_port "$work/server.log" > /dev/null
hport=$(grep -o 'HTTP/JSON gateway on [^ ]* (port [0-9]*' "$work/server.log" | grep -o '[0-9]*$')
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$hport/v1/models" | grep -q '"state": "MODEL_STATE_READY"' && break
  sleep 0.2
done
# A photo to upload, and the global-direction statistics the text edit needs.
curl -sf "http://127.0.0.1:$hport/v1/models/demo:generate?format=png" -d '{"seeds": [5]}' -o "$work/photo.png" \
  || fail "?format=png download"
curl -sf "http://127.0.0.1:$hport/v1/models/demo:prepareGlobalDirections" \
  -d '{"clipModel": "demo-clip", "numSamples": 200, "numImages": 2, "batchSize": 4}' > "$work/stats.ndjson" \
  || fail "prepareGlobalDirections"
grep -q JOB_STATE_SUCCEEDED "$work/stats.ndjson" || fail "statistics job: $(tail -2 "$work/stats.ndjson")"
[ "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$hport/")" = "text/html; charset=utf-8" ] \
  || fail "GET / is not the console page"

step "drive the console in headless Chromium"
CHROMIUM="$chromium" NODE_PATH="$tools/node_modules" timeout 900 node "$src/tests/console/console_test.js" "$hport" \
  "$work/photo.png" "$build/console.png" || fail "console"
[ "$(head -c 8 "$build/console.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "screenshot is not a PNG"
