#!/usr/bin/env bash
# Trains the toy world's models with the project's own code from one seed and writes the
# built-in demo pack (docs/toy-world.md):
#   clip: the BPE vocabulary of the world's captions and prompt templates, then the CLIP
#         model, contrastively on scenes of every style, then the same fine-tuned on a
#         world where some scenes are empty (its held-out zero-shot accuracy is measured
#         after each stage) -> PACK/toy-clip
#   clip-tune: the second CLIP stage alone, from the first stage's last run
#   gan:  the generator, adversarially on "photo" scenes of one shape -> PACK/toy
# Usage: scripts/train-toy-pack.sh [SEED [PART ...]] (default: seed 1, clip and gan, one
# after the other with every CPU). Needs a build (scripts/build.sh). Each part replaces
# its own folder of the pack, whose manifest names the script, seed, commit and steps
# that made it. Intermediate files go under $GANSERVE_TOY_WORK (build/toy-training), the
# pack to $GANSERVE_TOY_PACK (assets/toy-pack). CLIP_STEPS / CLIP_TUNE_STEPS / GAN_STEPS
# change the step counts (the defaults made the shipped pack); GAN_RESUME=1 continues the
# last generator run from its checkpoint (to the same weights a run from scratch reaches);
# PACK_ONLY=1 skips the training and packs each part's last run from the work folder.
# docs/toy-world.md has the times.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
shift || true
parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(clip gan)
work=${GANSERVE_TOY_WORK:-build/toy-training}
pack=${GANSERVE_TOY_PACK:-assets/toy-pack}
tool=build/tools/toytrain/ganserve-toytrain
[ -x "$tool" ] || { echo "build first: bash scripts/build.sh"; exit 1; }
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$work" "$pack"

# install NAME RUN_JSON FILE...: PACK/NAME becomes FILE... plus its manifest, which names
# the commit and seed recorded next to RUN_JSON (RUN.made) when the run was made.
install() {
  local name=$1 run=$2 made commit seed
  shift 2
  made=${run%.json}.made
  [ -f "$made" ] || { echo "$made missing: no record of the run's commit and seed (train with this script)"; exit 1; }
  read -r commit seed < "$made"
  local first=${FIRST_STAGE:-}
  rm -rf "$pack/$name.new"
  mkdir -p "$pack/$name.new"
  cp "$@" "$pack/$name.new/"
  python3 - "$pack/$name.new/manifest.json" "$name" "$seed" "$commit" "$run" "$first" <<'PY'
import json, sys
out, name, seed, commit, run_json, first = sys.argv[1:]
run = json.load(open(run_json))
made = {"script": "scripts/train-toy-pack.sh", "seed": int(seed), "commit": commit, "steps": run["steps"]}
if first:  # a fine-tuning run: name the run it started from
    first_run = json.load(open(first))
    first_commit, first_seed = open(first[:-len(".json")] + ".made").read().split()
    made["started_from"] = {"seed": int(first_seed), "commit": first_commit, "steps": first_run["steps"],
                            "heldout_zero_shot": first_run}
if name == "toy":
    m = {"kind": "generator", "checkpoint": "generator.safetensors",
         "train_g": "generator.safetensors", "train_d": "discriminator.safetensors",
         "domain": "photo", "default_truncation": 0.7,
         "trained_by": dict(made, images=run["images"], data="toy-world photo scenes of one shape (core/toyworld)")}
else:
    m = {"kind": "clip", "checkpoint": "clip.safetensors", "vocab": "vocab.txt",
         "domain": "toy world (shapes, colours, photo / pencil sketch / painting)",
         "trained_by": dict(made, heldout_zero_shot=run)}
with open(out, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
PY
  rm -rf "$pack/$name"
  mv "$pack/$name.new" "$pack/$name"
}

for part in "${parts[@]}"; do
  case "$part" in
    clip)
      if [ -z "${PACK_ONLY:-}" ]; then
        echo "== vocabulary"
        $tool vocab --out "$work/vocab.txt"
        echo "== CLIP, seed $seed"
        $tool clip --vocab "$work/vocab.txt" --out "$work/clip" --seed "$seed" ${CLIP_STEPS:+--steps "$CLIP_STEPS"} \
          2> >(tee "$work/clip.log" >&2) | tee "$work/clip-eval.json"
        echo "$commit $seed" > "$work/clip-eval.made"
      fi
      ;&
    clip-tune)
      # Fine-tuning on a world where a tenth of the scenes hold no shape ("a pencil
      # sketch of nothing"), at half the learning rate (docs/toy-world.md).
      if [ -z "${PACK_ONLY:-}" ]; then
        echo "== CLIP fine-tuning with empty scenes, seed $seed"
        $tool clip --vocab "$work/vocab.txt" --out "$work/clip-tuned" --seed "$seed" --init "$work/clip/clip.safetensors" \
          --steps "${CLIP_TUNE_STEPS:-600}" --lr 2.5e-4 --empty 0.1 2> >(tee "$work/clip-tuned.log" >&2) \
          | tee "$work/clip-tuned-eval.json"
        echo "$commit $seed" > "$work/clip-tuned-eval.made"
      fi
      FIRST_STAGE=$work/clip-eval.json install toy-clip "$work/clip-tuned-eval.json" \
        "$work/clip-tuned/clip.safetensors" "$work/vocab.txt"
      ;;
    gan)
      if [ -z "${PACK_ONLY:-}" ]; then
        echo "== generator, seed $seed"
        $tool gan --out "$work/gan" --seed "$seed" ${GAN_STEPS:+--steps "$GAN_STEPS"} \
          ${GAN_RESUME:+--resume "$work/gan/training.safetensors"} 2> >(tee "$work/gan.log" >&2) \
          | tee "$work/gan.json"
        echo "$commit $seed" > "$work/gan.made"
      fi
      # The EMA generator is also one-shot adaptation's trainable start (train_g): the
      # pack stays under 20 MB without the trained copy, which stays in $work/gan.
      install toy "$work/gan.json" "$work/gan/generator.safetensors" "$work/gan/discriminator.safetensors"
      ;;
    *) echo "unknown part $part (clip, clip-tune or gan)"; exit 2 ;;
  esac
done
du -sh "$pack"
echo "== done: $pack (samples of the generator: $work/gan/samples-*.png)"
