#!/usr/bin/env bash
# Where StyleGAN-NADA's directional loss pulls the toy generator for photo -> pencil
# sketch (docs/toy-world.md): for 16 procedural photos (one shape each), the directional
# cosine cos(E(candidate) - E(photo), T("pencil sketch") - T("photo")) that adaptation
# maximises, for candidate pictures of the same scene:
#   sketch       the world's own pencil sketch of the scene
#   outline      the shape's outline in graphite on paper, no fill
#   pale         the shape filled with a 30 % tint of its colour on paper, no outline
#   grey         the shape filled with flat mid-grey on paper, no outline
#   grey_outline the same with the graphite outline
#   on_paper     the photo's shape, unchanged, on paper
#   blank        paper alone
# and, when given, pairs of generator samples before and after an adaptation.
# Prints one JSON line: the mean cosine per candidate.
# Usage: bench/toy_sketch_probe.sh [BUILD_DIR [CLIP_FOLDER [BASE_PNG_DIR ADAPTED_PNG_DIR]]]
#   CLIP_FOLDER holds clip.safetensors and vocab.txt (default assets/toy-pack/toy-clip);
#   the PNG folders hold seed1.png ... seed16.png (ganctl generate --out).
set -euo pipefail
build=${1:-build}
clip=${2:-assets/toy-pack/toy-clip}
base=${3:-}
adapted=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for style in photo pencil_sketch; do
  "$build/client/ganctl" local make-world --out "$work/$style" --count 16 --seed 77 --style "$style" \
    --max-shapes 1 --captions 0 > /dev/null 2>&1
done
# Candidates from each photo: its shape is the set of saturated pixels (the world's
# backgrounds are neutral).
/usr/bin/python3 - "$work" <<'PY'
import colorsys, random, sys
from PIL import Image
work = sys.argv[1]
random.seed(2)
paper = (238, 235, 228)
for i in range(16):
    im = Image.open(f"{work}/photo/{i:06d}.png").convert("RGB")
    n = im.width
    px = im.load()
    mask = [[colorsys.rgb_to_hsv(*[c / 255 for c in px[x, y]])[1] > 0.3 for y in range(n)] for x in range(n)]
    shape = [px[x, y] for x in range(n) for y in range(n) if mask[x][y]] or [(128, 128, 128)]
    mean = tuple(sum(c[k] for c in shape) // len(shape) for k in range(3))
    def edge(x, y):
        return mask[x][y] and any(not mask[x + dx][y + dy] for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                                  if 0 <= x + dx < n and 0 <= y + dy < n)
    for name in ("outline", "pale", "on_paper", "blank", "grey", "grey_outline"):
        out = Image.new("RGB", (n, n))
        q = out.load()
        for x in range(n):
            for y in range(n):
                v = random.randint(-5, 5)
                p = tuple(c + v for c in paper)
                if name == "pale" and mask[x][y]:
                    p = tuple(int(0.3 * s + 0.7 * c) for s, c in zip(mean, p))
                if name == "on_paper" and mask[x][y]:
                    p = px[x, y]
                if name in ("grey", "grey_outline") and mask[x][y]:
                    p = (160 + v, 160 + v, 160 + v)
                if name in ("outline", "grey_outline") and edge(x, y):
                    p = (90 + v, 90 + v, 95 + v)
                q[x, y] = p
        out.save(f"{work}/{name}{i}.png")
PY
pairs=()
for i in $(seq 0 15); do
  photo=$work/photo/$(printf %06d "$i").png
  pairs+=("$photo" "$work/pencil_sketch/$(printf %06d "$i").png")
  for c in outline pale on_paper blank grey grey_outline; do pairs+=("$photo" "$work/$c$i.png"); done
  if [ -n "$adapted" ]; then pairs+=("$base/seed$((i + 1)).png" "$adapted/seed$((i + 1)).png"); fi
done
"$build/tools/toytrain/ganserve-toytrain" --threads 2 direction --clip "$clip/clip.safetensors" \
  --vocab "$clip/vocab.txt" --from photo --to "pencil sketch" "${pairs[@]}" > "$work/cos.jsonl"
python3 - "$work/cos.jsonl" "${adapted:+adapted}" <<'PY'
import json, sys
cos = [json.loads(l)["cosine"] for l in open(sys.argv[1])]
names = ["sketch", "outline", "pale", "on_paper", "blank", "grey", "grey_outline"] + ([sys.argv[2]] if sys.argv[2] else [])
k = len(names)
print(json.dumps({"directional_cosine": {n: round(sum(cos[j::k]) / len(cos[j::k]), 3) for j, n in enumerate(names)}}))
PY
