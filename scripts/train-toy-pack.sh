#!/usr/bin/env bash
# Trains the toy world's models with the project's own code from one seed and writes the
# built-in demo pack (docs/toy-world.md):
#   1. the BPE vocabulary of the world's captions and prompt templates,
#   2. the CLIP model, contrastively on scenes of every style (its held-out zero-shot
#      accuracy is measured at the end),
#   3. the generator, adversarially on "photo" scenes of one shape.
# Usage: scripts/train-toy-pack.sh [SEED]. Needs a build (scripts/build.sh). Writes
# intermediate files under $GANSERVE_TOY_WORK (build/toy-training) and the pack to
# $GANSERVE_TOY_PACK (assets/toy-pack). CLIP_STEPS / GAN_STEPS change the step counts
# (the tool's defaults made the shipped pack); the two trainings run one after the other
# with every CPU. docs/toy-world.md has the times measured.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
work=${GANSERVE_TOY_WORK:-build/toy-training}
pack=${GANSERVE_TOY_PACK:-assets/toy-pack}
tool=build/tools/toytrain/ganserve-toytrain
[ -x "$tool" ] || { echo "build first: bash scripts/build.sh"; exit 1; }
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$work"

echo "== vocabulary"
$tool vocab --out "$work/vocab.txt"
echo "== CLIP, seed $seed"
$tool clip --vocab "$work/vocab.txt" --out "$work/clip" --seed "$seed" ${CLIP_STEPS:+--steps "$CLIP_STEPS"} \
  2> >(tee "$work/clip.log" >&2) | tee "$work/clip-eval.json"
echo "== generator, seed $seed"
$tool gan --out "$work/gan" --seed "$seed" ${GAN_STEPS:+--steps "$GAN_STEPS"} 2> >(tee "$work/gan.log" >&2) \
  | tee "$work/gan.json"

echo "== the pack: $pack"
rm -rf "$pack.new"
mkdir -p "$pack.new/toy" "$pack.new/toy-clip"
# The EMA generator is also one-shot adaptation's trainable start (train_g): the pack stays
# under 20 MB without the trained copy, which stays in $work/gan.
cp "$work/gan/generator.safetensors" "$work/gan/discriminator.safetensors" "$pack.new/toy/"
cp "$work/clip/clip.safetensors" "$work/vocab.txt" "$pack.new/toy-clip/"
python3 - "$pack.new" "$seed" "$commit" "$work/gan.json" "$work/clip-eval.json" <<'PY'
import json, sys
pack, seed, commit, gan_json, clip_json = sys.argv[1:]
gan_run, clip_run = json.load(open(gan_json)), json.load(open(clip_json))
made = {"script": "scripts/train-toy-pack.sh", "seed": int(seed), "commit": commit}
gen = {"kind": "generator", "checkpoint": "generator.safetensors",
       "train_g": "generator.safetensors", "train_d": "discriminator.safetensors",
       "domain": "photo", "default_truncation": 0.7,
       "trained_by": dict(made, steps=gan_run["steps"], images=gan_run["images"],
                          data="toy-world photo scenes of one shape (core/toyworld)")}
clip = {"kind": "clip", "checkpoint": "clip.safetensors", "vocab": "vocab.txt",
        "domain": "toy world (shapes, colours, photo / pencil sketch / painting)",
        "trained_by": dict(made, steps=clip_run["steps"], heldout_zero_shot=clip_run)}
for name, m in (("toy", gen), ("toy-clip", clip)):
    with open(f"{pack}/{name}/manifest.json", "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
PY
rm -rf "$pack"
mv "$pack.new" "$pack"
du -sh "$pack"
echo "== done: $pack (samples of the generator: $work/gan/samples-*.png)"
