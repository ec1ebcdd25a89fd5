#!/usr/bin/env bash
# The main job on the embedded defaults: installs what is missing, builds, starts
# ganserve on localhost (SQLite job store, local model repository, CPU) and drives it
# with ganctl, writing PNGs under demo-out/.
#
# Without weights in models/ it installs the built-in toy pack (assets/toy-pack, made by
# scripts/train-toy-pack.sh): a 64 px generator trained on procedural "photos" of one
# coloured shape and a small CLIP trained on the same world in three styles, so what the
# pictures should show can be judged at a glance (docs/toy-world.md). The run ends with
# one before/after sheet: demo-out/sheet.png. scripts/fetch-weights.sh documents the
# official weights.
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
  echo "== no models in $models: installing the built-in toy pack (assets/toy-pack): a 64 px generator"
  echo "   trained on procedural photos of one coloured shape, and a small CLIP trained on the same"
  echo "   world as photos, pencil sketches and paintings (docs/toy-world.md)"
  mkdir -p "$models"
  cp -r assets/toy-pack/. "$models/"
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
ms = [m["name"] for m in json.load(sys.stdin).get("models", []) if m.get("state") == "MODEL_STATE_READY"
      and m.get("kind") in ("MODEL_KIND_GENERATOR", "MODEL_KIND_ADAPTED_GENERATOR")]
print("toy" if "toy" in ms else (ms[0] if ms else ""))')
[ -n "$model" ] || { echo "no ready generator in $models"; exit 1; }

echo "== the same API over HTTP/JSON (console: http://127.0.0.1:$http_port/, OpenAPI: /v1/openapi.json)"
curl -s "http://127.0.0.1:$http_port/v1/models/$model:generate" -d '{"seeds": [1], "format": "IMAGE_FORMAT_PNG"}' \
  | python3 -c 'import json, sys; b = json.loads(sys.stdin.readline()); print(f"   POST /v1/models/{sys.argv[1]}:generate ->", len(b["images"]), "image(s),", b["images"][0]["width"], "px")' "$model"

rm -rf "$out"
seeds=1-8
if [ "$model" = toy ]; then
  clip=toy-clip
  neutral="a circle" target="a square" alphas=0,3,6
else
  # StyleCLIP's CLIP is ViT-B/32 (fetch-weights.sh names it clip-vit-b-32).
  clip=clip-vit-b-32
  neutral="a face" target="a smiling face" alphas=-4,0,4
fi

echo "== sampling '$model': seeds $seeds, truncation 0.7"
$ganctl --timeout 600 generate --model "$model" --seeds $seeds --truncation 0.7 --out "$out/samples"

echo "== domain adaptation (StyleGAN-NADA, the defaults): '$model', photo -> pencil sketch"
adapted="$model-sketch-$(date +%s)"
$ganctl --timeout 0 adapt --model "$model" --from photo --to "pencil sketch" --preview-every 100 \
  --name "$adapted" --out "$out/adapt"
echo "== sampling the adapted model '$adapted' (same seeds)"
$ganctl --timeout 600 generate --model "$adapted" --seeds $seeds --truncation 0.7 --out "$out/adapted"

echo "== procedural photos the generator never saw (toy world, seed 4242: scenes 0 and 5, a small star"
echo "   and a large circle), inverted into '$model', then rendered in the adapted domain"
build/client/ganctl local make-world --out "$out/world" --count 6 --seed 4242 --style photo --max-shapes 1 \
  --captions 0 2> /dev/null
photos=("$out/world/000000.png" "$out/world/000005.png")
[ "$model" = toy ] || photos=("$out/samples/seed3.png")
row3=""
for i in "${!photos[@]}"; do
  inv=$($ganctl --timeout 0 invert "${photos[$i]}" --model "$model" --preview-every 250 \
    --out "$out/invert/$i" | grep '^inv-')
  $ganctl generate --model "$adapted" --inversion "$inv" --out "$out/invert/$i/adapted"
  row3+="${photos[$i]} $out/invert/$i/reconstruction.png $(ls "$out/invert/$i"/adapted/*.png | grep -v grid.png | head -1) "
done

echo "== text editing (StyleCLIP global directions): statistics for '$model' with $clip (small sample"
echo "   counts for the demo), then the last inversion edited from '$neutral' toward '$target'"
$ganctl --timeout 0 prepare-global --model "$model" --clip "$clip" --samples 2000 --images 8 --batch 8 \
  --out "$out/stats" || echo "   (statistics exist already)"
$ganctl edit --model "$model" --inversion "$inv" --neutral "$neutral" --target "$target" \
  --alpha="$alphas" --beta 0.1 --clip "$clip" --out "$out/edit"
$ganctl edit --model "$model" --render-model "$adapted" --inversion "$inv" --neutral "$neutral" \
  --target "$target" --alpha="$alphas" --beta 0.1 --clip "$clip" --out "$out/edit-adapted"

echo "== the before/after sheet: $out/sheet.png"
tiles() { for s in $(seq 1 8); do printf '%s ' "$1/seed$s.png"; done; }
/usr/bin/python3 scripts/demo_sheet.py "$out/sheet.png" \
  "1. base '$model', seeds 1-8: what it was trained on (toy: one coloured shape, photo-like)=$(tiles "$out/samples")" \
  "2. adapted to 'pencil sketch', same seeds: should be the same shapes and colours as grey-paper sketches=$(tiles "$out/adapted")" \
  "3. unseen photo | its inversion | the inversion rendered as a sketch (toy: the small star is missed)=$row3" \
  "4. edit '$neutral' -> '$target' (alpha $alphas), base then sketch=$(ls "$out"/edit/edit*.png | sort -V | tr '\n' ' ') $(ls "$out"/edit-adapted/edit*.png | sort -V | tr '\n' ' ')"
echo "   row 1: the generator's own samples; row 2: the same seeds after adaptation (the domain should"
echo "   change and the content stay; with the toy pack the content fades to speckled paper, the open"
echo "   problem of docs/toy-world.md); row 3: photos it never saw, reconstructed, then as sketches (the"
echo "   toy generator draws rounded shapes of middling size: the small star is missed, the circle found);"
echo "   row 4: the text edit at growing strength, in the base domain then in the sketch domain (on"
echo "   sampled circles the CLIP's P(square) goes from 0.08 to 0.90 at alpha 2: docs/toy-world.md)"

echo "== metrics (first lines)"
python3 -c 'import urllib.request; print("\n".join(urllib.request.urlopen("http://127.0.0.1:9464/metrics").read().decode().splitlines()[:6]))'
echo "== done: $out/sheet.png (the whole story on one page); samples/, adapted/, adapt/ (previews),"
echo "   invert/N/ (latent.npy, reconstruction.png), edit/ and edit-adapted/ (strips)"
