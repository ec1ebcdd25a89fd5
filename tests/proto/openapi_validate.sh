#!/usr/bin/env bash
# The OpenAPI document (BUILD/openapi.json, generated from the proto) passes a real
# validator: @apidevtools/swagger-parser from npm (schema validation and $ref resolution).
# Exit 77 (skipped) without node and npm or when the npm registry cannot be reached.
set -euo pipefail
build=$1
doc="$build/openapi.json"
[ -s "$doc" ] || { echo "FAIL: $doc missing (build first)"; exit 1; }
command -v node > /dev/null && command -v npm > /dev/null || { echo "skipped: node/npm not installed"; exit 77; }
tools="$build/npm-openapi"
if [ ! -d "$tools/node_modules/@apidevtools/swagger-parser" ]; then
  mkdir -p "$tools"
  if ! timeout 300 npm install --prefix "$tools" --no-audit --no-fund --silent @apidevtools/swagger-parser@10 \
      > "$tools/install.log" 2>&1; then
    echo "skipped: npm could not install @apidevtools/swagger-parser"; tail -5 "$tools/install.log"; exit 77
  fi
fi
NODE_PATH="$tools/node_modules" node -e '
const SwaggerParser = require("@apidevtools/swagger-parser");
SwaggerParser.validate(process.argv[1]).then((api) => {
  console.log(`valid OpenAPI ${api.openapi}: ${Object.keys(api.paths).length} paths`);
}).catch((e) => { console.error("FAIL: " + e.message); process.exit(1); });
' "$doc"
