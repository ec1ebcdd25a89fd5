#!/usr/bin/env bash
# The main job on the embedded defaults: installs what is missing, builds, starts
# ganserve on localhost (SQLite job store, local model repository, CPU) and drives it
# with ganctl, writing PNGs under demo-out/.
#
# Without real weights in models/ it writes the built-in demo pack: a small generator
# with RANDOM weights. Its pictures mean nothing; they show that the pipeline works.
# scripts/fetch-weights.sh documents how to get the official weights.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh

models=${GANSERVE_MODEL_REPOSITORY:-$PWD/models}
data=${GANSERVE_DATA_DIR:-$PWD/data}
out=$PWD/demo-out
port=${GANSERVE_DEMO_PORT:-50051}
ganctl="build/client/ganctl --server 127.0.0.1:$port"

if ! ls "$models"/*/manifest.json > /dev/null 2>&1; then
  echo "== no models in $models: writing the built-in demo pack: a 64 px generator and a small CLIP,"
  echo "   both with RANDOM weights, and a synthetic vocabulary. The images mean nothing; they show the"
  echo "   pipeline working. scripts/fetch-weights.sh explains how to get the official weights."
  build/client/ganctl local make-demo --out "$models" --name demo --resolution 64
fi

echo "== starting ganserve on 127.0.0.1:$port (log: $data/ganserve.log)"
mkdir -p "$data"
http_port=${GANSERVE_DEMO_HTTP_PORT:-8080}
build/server/ganserve --listen "127.0.0.1:$port" --metrics_listen 127.0.0.1:9464 \
  --http_listen "127.0.0.1:$http_port" --data_dir "$data" \
  --model_repository "$models" --device auto 2> "$data/ganserve.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  $ganctl health > /dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "ganserve exited:"; tail -20 "$data/ganserve.log"; exit 1; }
  sleep 0.2
done
$ganctl health

echo "== models"
$ganctl models list
model=$($ganctl --json models list | python3 -c '
import json, sys
ms = [m for m in json.load(sys.stdin).get("models", []) if m.get("state") == "MODEL_STATE_READY"
      and m.get("kind") in ("MODEL_KIND_GENERATOR", "MODEL_KIND_ADAPTED_GENERATOR")]
print(ms[0]["name"] if ms else "")')
[ -n "$model" ] || { echo "no ready generator in $models"; exit 1; }

echo "== the same API over HTTP/JSON (console: http://127.0.0.1:$http_port/, OpenAPI: /v1/openapi.json)"
curl -s "http://127.0.0.1:$http_port/v1/models/$model:generate" -d '{"seeds": [1], "format": "IMAGE_FORMAT_PNG"}' \
  | python3 -c 'import json, sys; b = json.loads(sys.stdin.readline()); print(f"   POST /v1/models/{sys.argv[1]}:generate ->", len(b["images"]), "image(s),", b["images"][0]["width"], "px")' "$model"

echo "== sampling '$model': seeds 1-16, truncation 0.7"
rm -rf "$out"
$ganctl --timeout 600 generate --model "$model" --seeds 1-16 --truncation 0.7 --out "$out/samples"

echo "== domain adaptation (StyleGAN-NADA): '$model', photo -> pencil sketch, 30 steps"
adapted="$model-sketch-$(date +%s)"
$ganctl --timeout 0 adapt --model "$model" --from photo --to "pencil sketch" --iterations 30 --preview-every 10 \
  --name "$adapted" --out "$out/adapt"
echo "== sampling the adapted model '$adapted' (same seeds)"
$ganctl --timeout 600 generate --model "$adapted" --seeds 1-16 --truncation 0.7 --out "$out/adapted"
echo "== inverting a picture (samples/seed3.png) into '$model', then rendering it in the adapted domain"
inv=$($ganctl --timeout 0 invert "$out/samples/seed3.png" --model "$model" --steps 100 --preview-every 50 \
  --out "$out/invert" | grep '^inv-')
$ganctl generate --model "$adapted" --inversion "$inv" --out "$out/invert/adapted"
echo "== text editing (StyleCLIP global directions): statistics for '$model' (small sample counts for the demo),"
echo "   then the inverted picture edited toward 'a smiling face' and rendered in the adapted domain"
# StyleCLIP's CLIP is ViT-B/32 (fetch-weights.sh names it clip-vit-b-32); the demo pack has demo-clip.
clip=clip-vit-b-32
[ -f "$models/$clip/manifest.json" ] || clip=demo-clip
$ganctl --timeout 0 prepare-global --model "$model" --clip "$clip" --samples 2000 --images 4 --batch 8 \
  --out "$out/stats" || echo "   (statistics exist already)"
$ganctl edit --model "$model" --render-model "$adapted" --inversion "$inv" --neutral "a face" \
  --target "a smiling face" --alpha=-4,0,4 --beta 0.01 --clip "$clip" --out "$out/edit"

echo "== metrics (first lines)"
python3 -c 'import urllib.request; print("\n".join(urllib.request.urlopen("http://127.0.0.1:9464/metrics").read().decode().splitlines()[:6]))'
echo "== done: $out/samples/grid.png (base), $out/adapted/grid.png (adapted), previews in $out/adapt/,"
echo "   inversion in $out/invert/ (before_after.png, latent.npy; adapted rendering in invert/adapted/),"
echo "   text edit strip in $out/edit/strip0.png"
