#!/usr/bin/env bash
# The shipped toy pack (assets/toy-pack) measured end to end through the real server:
#  1. its CLIP classifies held-out procedural scenes zero-shot (shape, colour, style);
#  2. the generator's samples look like the world (confident shape and colour, not sketches);
#  3. adapt --from photo --to "pencil sketch" with the defaults takes the same seeds out
#     of the photo domain (the target: into sketches that keep their shape and colour),
#     and the pictures lose saturation;
#  4. adapt --from red --to blue moves the hue statistics from red toward blue;
#  5. a global-direction edit "a circle" -> "a square" raises P(square) monotonically
#     with alpha up to 3 (it falls back a little beyond);
#  6. inversions of procedural scenes the generator never saw reconstruct their shapes;
#  7. the CLIP's directional loss prefers the world's sketches and outlines to blank paper
#     (bench/toy_sketch_probe.sh), so a blank adaptation is the generator's failure.
# The figures are printed as JSON lines. Asserted: what the shipped pack reaches of the
# targets in docs/toy-world.md (colour and style zero-shot >= 95 %, shape >= 93 %, as
# 95.5 % leaves too little room for kernels that round differently on other CPUs; samples
# >= 80 % confident in shape and colour and <= 10 % sketches; after photo -> sketch
# <= 20 % still photos and saturation down; red -> blue hue shares; P(square) higher at
# every alpha > 0 than at 0 and rising over alpha 0, 1, 2, 3; at least 3 of 6 unseen photos
# inverted at least 3 dB above their mean colour's PSNR;
# directional cosine of sketches and outlines above blank paper's by 0.2 and 0.1).
# Printed only, as the pack does not reach them yet (docs/toy-world.md): >= 80 % sketches
# after photo -> sketch with >= 70 % keeping their seed's shape and colour, an edit sweep
# still rising beyond alpha 3.
# Usage: toy_semantic_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
ganserve=$build/server/ganserve
ganctl=$build/client/ganctl
toy=$build/tools/toytrain/ganserve-toytrain
source "$(dirname "$0")/lib.sh"
pack=$src/assets/toy-pack
clip="$pack/toy-clip/clip.safetensors"
vocab="$pack/toy-clip/vocab.txt"
[ -f "$pack/toy/manifest.json" ] || fail "no toy pack at $pack"

# classify OUT.jsonl PNG...: the toy CLIP's zero-shot classes of each PNG.
classify() {
  local out=$1
  shift
  "$toy" --threads 2 classify --clip "$clip" --vocab "$vocab" "$@" > "$out" || fail "classify"
}

step "1. zero-shot accuracy on 600 held-out scenes"
"$toy" --threads 2 evaluate --clip "$clip" --vocab "$vocab" --seed 90210 --count 600 > "$work/zero_shot.json" \
  || fail "evaluate"
python3 - "$work/zero_shot.json" <<'PY' || fail "zero-shot accuracy"
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"zero_shot": r}))
for k in ("colour_accuracy", "style_accuracy"):
    assert r[k] >= 0.95, f"{k} {r[k]:.3f} < 0.95"
assert r["shape_accuracy"] >= 0.93, f"shape_accuracy {r['shape_accuracy']:.3f} < 0.93"
PY

mkdir -p "$work/models"
cp -r "$pack"/. "$work/models/"
"$ganserve" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --data_dir "$work/data" \
  --model_repository "$work/models" --device cpu 2> "$work/server.log" &
server_pid=$!
port=$(server_port "$work/server.log")
g="$ganctl --server 127.0.0.1:$port"
for _ in $(seq 1 100); do $g health > /dev/null 2>&1 && break; sleep 0.2; done

step "2. samples of seeds 1-64 (truncation 0.7)"
$g generate --model toy --seeds 1-64 --truncation 0.7 --out "$work/base" 2> /dev/null || fail "generate"
classify "$work/base.jsonl" "$work"/base/seed{1..64}.png
python3 - "$work/base.jsonl" <<'PY' || fail "samples"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
both = sum(r["shape"]["p"] >= 0.5 and r["colour"]["p"] >= 0.5 for r in rows) / len(rows)
sketch = sum(r["style"]["best"] == "pencil_sketch" for r in rows) / len(rows)
print(json.dumps({"samples": {"confident_shape_and_colour": both, "sketch": sketch}}))
assert sketch <= 0.1, f"sketches {sketch:.2f} > 0.1"
assert both >= 0.8, f"confident in shape and colour {both:.2f} < 0.8"
PY

# stats PNG...: per picture, the mean HSV saturation, the shares of vivid red and blue
# pixels, and the contrast (standard deviation of the grey level, 0-1: blank paper has
# almost none, a shape or its outline on paper some) (Debian's Python: PIL).
stats() {
  /usr/bin/python3 - "$@" <<'PY'
import colorsys, json, sys
from PIL import Image
out = []
for p in sys.argv[1:]:
    px = list(Image.open(p).convert("RGB").getdata())
    hsv = [colorsys.rgb_to_hsv(r / 255, g / 255, b / 255) for r, g, b in px]
    sat = sum(s for _, s, _ in hsv) / len(hsv)
    vivid = [h for h, s, v in hsv if s > 0.35 and v > 0.25]
    red = sum(h < 1 / 24 or h > 23 / 24 for h in vivid) / len(px)
    blue = sum(7 / 12 - 1 / 24 < h < 7 / 12 + 1 / 12 for h in vivid) / len(px)
    grey = [(0.299 * r + 0.587 * g + 0.114 * b) / 255 for r, g, b in px]
    mean = sum(grey) / len(grey)
    contrast = (sum((x - mean) ** 2 for x in grey) / len(grey)) ** 0.5
    out.append({"saturation": sat, "red": red, "blue": blue, "contrast": contrast})
print(json.dumps(out))
PY
}

step "3. adapt photo -> pencil sketch (defaults)"
$g --timeout 0 adapt --model toy --from photo --to "pencil sketch" --name toy-sketch --out "$work/adapt" \
  > /dev/null 2> "$work/adapt.err" || fail "adapt: $(tail -3 "$work/adapt.err")"
$g generate --model toy-sketch --seeds 1-64 --truncation 0.7 --out "$work/sketch" 2> /dev/null || fail "generate"
classify "$work/sketch.jsonl" "$work"/sketch/seed{1..64}.png
stats "$work"/base/seed{1..64}.png > "$work/base_stats.json"
stats "$work"/sketch/seed{1..64}.png > "$work/sketch_stats.json"
python3 - "$work/base.jsonl" "$work/sketch.jsonl" "$work/base_stats.json" "$work/sketch_stats.json" <<'PY' \
  || fail "photo -> pencil sketch"
import json, sys
base = [json.loads(l) for l in open(sys.argv[1])]
after = [json.loads(l) for l in open(sys.argv[2])]
bs, as_ = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
sketch = sum(r["style"]["best"] == "pencil_sketch" for r in after) / len(after)
photo = sum(r["style"]["best"] == "photo" for r in after) / len(after)
same = lambda k: [a[k]["best"] == b[k]["best"] for a, b in zip(after, base)]
kept = sum(s and c for s, c in zip(same("shape"), same("colour"))) / len(base)
sat_b = sum(s["saturation"] for s in bs) / len(bs)
sat_a = sum(s["saturation"] for s in as_) / len(as_)
contrast = lambda xs: sum(s["contrast"] for s in xs) / len(xs)
print(json.dumps({"photo_to_sketch": {"sketch": sketch, "photo": photo, "shape_and_colour_kept": kept,
                                      "shape_kept": sum(same("shape")) / len(base),
                                      "colour_kept": sum(same("colour")) / len(base),
                                      "saturation_before": sat_b, "saturation_after": sat_a,
                                      "contrast_before": contrast(bs), "contrast_after": contrast(as_)}}))
assert sat_a < 0.8 * sat_b, f"saturation {sat_b:.3f} -> {sat_a:.3f}: not lower"
assert photo <= 0.2, f"still photos after adaptation {photo:.2f} > 0.2"
PY

step "4. adapt red -> blue (defaults)"
$g --timeout 0 adapt --model toy --from red --to blue --name toy-blue --out "$work/adapt-blue" \
  > /dev/null 2> "$work/adapt-blue.err" || fail "adapt red -> blue: $(tail -3 "$work/adapt-blue.err")"
$g generate --model toy-blue --seeds 1-64 --truncation 0.7 --out "$work/blue" 2> /dev/null || fail "generate"
stats "$work"/blue/seed{1..64}.png > "$work/blue_stats.json"
python3 - "$work/base_stats.json" "$work/blue_stats.json" <<'PY' || fail "red -> blue"
import json, sys
b, a = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
mean = lambda xs, k: sum(x[k] for x in xs) / len(xs)
r = {"red_before": mean(b, "red"), "red_after": mean(a, "red"), "blue_before": mean(b, "blue"),
     "blue_after": mean(a, "blue")}
print(json.dumps({"red_to_blue": r}))
assert r["red_after"] < 0.5 * r["red_before"], "red pixels did not drop by half"
assert r["blue_after"] > 1.5 * r["blue_before"], "blue pixels did not grow by half"
PY

step "5. global directions: 'a circle' -> 'a square', alpha sweep"
$g --timeout 0 prepare-global --model toy --clip toy-clip --samples 2000 --images 8 --batch 8 --out "$work/stats" \
  > /dev/null 2> "$work/prep.err" || fail "prepare-global: $(tail -3 "$work/prep.err")"
# Seeds whose sample is a circle.
circles=$(python3 - "$work/base.jsonl" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(",".join([os.path.basename(r["file"])[4:-4] for r in rows if r["shape"]["best"] == "circle"][:12]))
PY
)
[ -n "$circles" ] || fail "no circle among the samples"
$g edit --model toy --seeds "$circles" --truncation 0.7 --neutral "a circle" --target "a square" --alpha=0,1,2,3,4,6 \
  --beta 0.1 --clip toy-clip --out "$work/edit" 2> "$work/edit.err" > /dev/null || fail "edit: $(tail -3 "$work/edit.err")"
classify "$work/edit.jsonl" $(ls "$work"/edit/edit*.png | sort -V)
python3 - "$work/edit.jsonl" <<'PY' || fail "circle -> square"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
alphas = [0, 1, 2, 3, 4, 6]
k = len(alphas)
n = len(rows) // k
p = [sum(rows[i * k + j]["shape"]["all"]["square"] for i in range(n)) / n for j in range(k)]
print(json.dumps({"circle_to_square": {"seeds": n, "p_square_by_alpha": dict(zip(alphas, p))}}))
assert all(x > p[0] for x in p[1:]), f"P(square) not higher at every alpha > 0: {p}"
# Rising up to alpha 3, where it saturates (0.90 -> 0.93 measured): a step there may
# level off by classification noise, not fall.
assert p[0] < p[1] < p[2] and p[3] > p[2] - 0.03, f"P(square) not rising with alpha up to 3: {p}"
PY

step "6. inversion of six scenes the generator never saw"
# Each reconstruction is compared with the best constant image (the photo's mean colour):
# a reconstruction that only finds the backdrop scores about as well as that, so the
# PSNR alone (about 22 dB either way on these backdrops) would not tell a shape found from
# one missed.
"$ganctl" local make-world --out "$work/world" --count 6 --seed 4242 --style photo --max-shapes 1 --captions 0 \
  2> /dev/null || fail "make-world"
for i in 0 1 2 3 4 5; do
  $g --timeout 0 invert "$work/world/00000$i.png" --model toy --out "$work/invert/$i" > "$work/invert.out" \
    2> "$work/invert.err" || fail "invert: $(tail -3 "$work/invert.err")"
done
/usr/bin/python3 - "$work/world" "$work/invert" <<'PY' || fail "inversion"
import json, math, sys
from PIL import Image
world, inv = sys.argv[1:]
def psnr(mse):
    return 10 * math.log10(255 ** 2 / max(mse, 1e-9))
rows = []
for i in range(6):
    a = list(Image.open(f"{world}/00000{i}.png").convert("RGB").getdata())
    b = list(Image.open(f"{inv}/{i}/reconstruction.png").convert("RGB").resize((64, 64)).getdata())
    mean = [sum(p[c] for p in a) / len(a) for c in range(3)]
    mse = sum((x - y) ** 2 for p, q in zip(a, b) for x, y in zip(p, q)) / (3 * len(a))
    flat = sum((x - m) ** 2 for p in a for x, m in zip(p, mean)) / (3 * len(a))
    rows.append({"psnr_db": round(psnr(mse), 2), "mean_colour_psnr_db": round(psnr(flat), 2),
                 "gain_db": round(psnr(mse) - psnr(flat), 2)})
found = sum(r["gain_db"] >= 3 for r in rows)
print(json.dumps({"inversion": {"scenes": rows, "found": found}}))
# Measured: the three large shapes gain 6-9 dB over their mean colour, the three small
# stars 1.4 dB at most (the generator draws rounded shapes of middling size).
assert found >= 3, f"only {found} of 6 inversions beat their photo's mean colour by 3 dB: {rows}"
PY
step "7. where StyleGAN-NADA's directional loss points for photo -> pencil sketch"
probe=$(bash "$src/bench/toy_sketch_probe.sh" "$build" "$pack/toy-clip") || fail "toy_sketch_probe.sh"
python3 - "$probe" <<'PY' || fail "directional cosines"
import json, sys
c = json.loads(sys.argv[1])["directional_cosine"]
print(json.dumps(c))
assert c["sketch"] > c["blank"] + 0.2, f"the world's sketches not preferred to blank paper: {c}"
assert c["outline"] > c["blank"] + 0.1, f"outlines not preferred to blank paper: {c}"
PY
echo "PASS (${SECONDS} s)"
