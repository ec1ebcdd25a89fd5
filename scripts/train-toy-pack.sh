#!/usr/bin/env bash
# Trains the toy world's models with the project's own code from one seed and writes the
# built-in demo pack (docs/toy-world.md):
#   1. the BPE vocabulary of the world's captions and prompt templates,
#   2. the CLIP model, contrastively on scenes of every style (its held-out zero-shot
#      accuracy is measured at the end),
#   3. the generator, adversarially on "photo" scenes of one shape.
# Usage: scripts/train-toy-pack.sh [SEED]. Needs a build (scripts/build.sh). Writes
# intermediate files under $GANSERVE_TOY_WORK (build/toy-training) and the pack to
# $GANSERVE_TOY_PACK (assets/toy-pack). CLIP_STEPS / GAN_STEPS shorten a trial run; the
# shipped pack used the defaults below. The two trainings run one after the other with
# every CPU (about 25 + 55 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
work=${GANSERVE_TOY_WORK:-build/toy-training}
pack=${GANSERVE_TOY_PACK:-assets/toy-pack}
clip_steps=${CLIP_STEPS:-2400}
gan_steps=${GAN_STEPS:-6000}
tool=build/tools/toytrain/ganserve-toytrain
[ -x "$tool" ] || { echo "build first: bash scripts/build.sh"; exit 1; }
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$work"

echo "== vocabulary"
$tool vocab --out "$work/vocab.txt"
echo "== CLIP: $clip_steps steps, seed $seed"
$tool clip --vocab "$work/vocab.txt" --out "$work/clip" --seed "$seed" --steps "$clip_steps" \
  2> >(tee "$work/clip.log" >&2) | tee "$work/clip-eval.json"
echo "== generator: $gan_steps steps, seed $seed"
$tool gan --out "$work/gan" --seed "$seed" --steps "$gan_steps" 2> >(tee "$work/gan.log" >&2)

echo "== the pack: $pack"
rm -rf "$pack.new"
mkdir -p "$pack.new/toy" "$pack.new/toy-clip"
cp "$work/gan/generator.safetensors" "$work/gan/generator_train.safetensors" \
  "$work/gan/discriminator.safetensors" "$pack.new/toy/"
cp "$work/clip/clip.safetensors" "$work/vocab.txt" "$pack.new/toy-clip/"
python3 - "$pack.new" "$seed" "$commit" "$clip_steps" "$gan_steps" "$work/clip-eval.json" <<'PY'
import json, sys
pack, seed, commit, clip_steps, gan_steps, clip_eval = sys.argv[1:]
made = {"script": "scripts/train-toy-pack.sh", "seed": int(seed), "commit": commit}
gen = {"kind": "generator", "checkpoint": "generator.safetensors",
       "train_g": "generator_train.safetensors", "train_d": "discriminator.safetensors",
       "domain": "photo", "default_truncation": 0.7,
       "trained_by": dict(made, steps=int(gan_steps),
                          data="toy-world photo scenes of one shape (core/toyworld)")}
clip = {"kind": "clip", "checkpoint": "clip.safetensors", "vocab": "vocab.txt",
        "domain": "toy world (shapes, colours, photo / pencil sketch / painting)",
        "trained_by": dict(made, steps=int(clip_steps), heldout=json.load(open(clip_eval)))}
for name, m in (("toy", gen), ("toy-clip", clip)):
    with open(f"{pack}/{name}/manifest.json", "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
PY
rm -rf "$pack"
mv "$pack.new" "$pack"
du -sh "$pack"
echo "== done: $pack (samples of the generator: $work/gan/samples-*.png)"
