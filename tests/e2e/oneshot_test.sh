#!/usr/bin/env bash
# One-shot adaptation (OneshotCLIP) end to end on the demo pack: ganctl streams both
# phases with their loss terms and previews, the result serves GenerateSamples and Edit,
# bad requests are refused with the reason, a job cancels, and a job killed with the
# server resumes from its checkpoint.
# Usage: oneshot_test.sh BUILD_DIR
set -euo pipefail
build=$1
ganserve=$build/server/ganserve
ganctl=$build/client/ganctl
source "$(dirname "$0")/lib.sh"

step "demo pack: generator with its training files (g, d), CLIP, AlexNet LPIPS"
"$ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1
[ -s "$work/models/demo/discriminator.safetensors" ] || fail "make-demo wrote no discriminator"
[ -s "$work/models/demo-lpips-alex/lpips_weights.ckpt" ] || fail "make-demo wrote no AlexNet LPIPS"
# A base without training files (what a g_ema-only release looks like).
mkdir "$work/models/gonly"
cp "$work/models/demo/generator.safetensors" "$work/models/gonly/"
printf '{"kind": "generator", "checkpoint": "generator.safetensors"}\n' > "$work/models/gonly/manifest.json"

start_server() {
  "$ganserve" --listen "${addr:-127.0.0.1:0}" --metrics_listen 127.0.0.1:0 --http_listen 127.0.0.1:0 \
    --data_dir "$work/data" --model_repository "$work/models" --device cpu --checkpoint_every 2 2> "$work/$1" &
  server_pid=$!
}
start_server server.log
port=$(server_port "$work/server.log")
addr=127.0.0.1:$port
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
hport=$(grep -o 'HTTP/JSON gateway on [^ ]* (port [0-9]*' "$work/server.log" | grep -o '[0-9]*$')
h="http://127.0.0.1:$hport"
"$ganctl" --server "$addr" models list | grep -q '^demo-lpips-alex  lpips' || fail "AlexNet LPIPS not listed"
"$ganctl" --server "$addr" generate --model demo --seeds 7 --out "$work/target" 2> /dev/null

step "adapt --one-shot: both phases stream their terms and previews"
"$ganctl" --server "$addr" --timeout 0 --json adapt --model demo --one-shot "$work/target/seed7.png" \
  --reference-steps 3 --iterations 6 --preview-every 3 --name demo-os --out "$work/os" > "$work/os.jsonl" \
  2> "$work/os.err" || fail "one-shot adapt: $(tail -3 "$work/os.err")"
python3 - "$work/os.jsonl" <<'PY' || fail "one-shot events"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
progress = [e["progress"] for e in events if "progress" in e]
phases = [p.get("phase") for p in progress]
assert phases == ["reference_search"] * 3 + ["fine_tune"] * 6, phases
assert set(progress[0]["losses"]) == {"total", "clip_ref", "w_l2", "ref_lpips", "ref_mse"}, progress[0]
align, patch = progress[3]["losses"], progress[4]["losses"]
assert {"adv_d", "adv_g", "r1", "ref_lpips", "ref_mse"} <= set(align), align
assert {"adv_d", "adv_g", "const", "patch"} <= set(patch), patch
previews = [e["preview"] for e in events if "preview" in e]
assert len(previews) == 3 and len(previews[0]["source"]) == 4, len(previews)
# The current grid, then the target and G(w_ref).
assert all(len(p["current"]) == 6 for p in previews)
assert events[-1]["job"]["state"] == "JOB_STATE_SUCCEEDED" and events[-1]["job"]["result"] == "demo-os"
PY

step "the one-shot model serves GenerateSamples (its sampling convention) and Edit"
grep -q '"method": "one_shot"' "$work/models/demo-os/manifest.json" || fail "manifest has no method"
grep -q '"mean_rows_from": 11' "$work/models/demo-os/manifest.json" || fail "manifest has no sampling convention"
"$ganctl" --server "$addr" generate --model demo-os --seeds 1-2 --out "$work/os_gen" 2> /dev/null || fail "generate"
"$ganctl" --server "$addr" generate --model demo --seeds 1 --out "$work/base_gen" 2> /dev/null
cmp -s "$work/os_gen/seed1.png" "$work/base_gen/seed1.png" && fail "the one-shot model renders as its base"
curl -sf "$h/v1/models/demo-os:generate?format=png" -d '{"seeds": [1]}' -o "$work/rows_default.png"
curl -sf "$h/v1/models/demo-os:generate?format=png" -d '{"seeds": [1], "meanRowsFrom": 2}' -o "$work/rows2.png" \
  || fail "meanRowsFrom over HTTP"
cmp -s "$work/rows_default.png" "$work/rows2.png" && fail "meanRowsFrom 2 changed nothing"
code=$(curl -s -o "$work/rows_bad.json" -w '%{http_code}' "$h/v1/models/demo-os:generate" -d '{"seeds": [1], "meanRowsFrom": 99}')
[ "$code" = 400 ] && grep -q "mean_rows_from must be in" "$work/rows_bad.json" || fail "meanRowsFrom 99: $code"
/usr/bin/python3 -c "import numpy as np; np.save('$work/dir.npy', np.full(128, 0.5, np.float32))"
"$ganctl" --server "$addr" edit --model demo --render-model demo-os --seeds 1 --direction "$work/dir.npy" \
  --alpha=-2,0,2 --out "$work/os_edit" 2> "$work/os_edit.err" || fail "edit: $(cat "$work/os_edit.err")"
[ -s "$work/os_edit/edit2.png" ] || fail "edit rendered nothing"

step "refusals: a base without g and d, two target images, NADA fields"
set +e
msg=$("$ganctl" --server "$addr" adapt --model gonly --one-shot "$work/target/seed7.png" 2>&1); rc=$?
set -e
[ "$rc" = 1 ] && echo "$msg" | grep -q "INVALID_ARGUMENT.*g and d" || fail "base without g/d: $msg"
img=$(base64 -w0 "$work/target/seed7.png")
code=$(curl -s -o "$work/two.json" -w '%{http_code}' "$h/v1/jobs:adapt" \
  -d "{\"model\": \"demo\", \"method\": \"ADAPT_METHOD_ONE_SHOT\", \"targetImages\": [\"$img\", \"$img\"]}")
[ "$code" = 400 ] && grep -q "exactly one target image" "$work/two.json" || fail "two images: $code $(cat "$work/two.json")"
code=$(curl -s -o "$work/nada.json" -w '%{http_code}' "$h/v1/jobs:adapt" \
  -d "{\"model\": \"demo\", \"method\": \"ADAPT_METHOD_ONE_SHOT\", \"targetImages\": [\"$img\"], \"autoLayerK\": 2}")
[ "$code" = 400 ] && grep -q "applies to method NADA" "$work/nada.json" || fail "NADA field: $code $(cat "$work/nada.json")"

step "cancel a one-shot job mid-run"
"$ganctl" --server "$addr" --timeout 0 adapt --model demo --one-shot "$work/target/seed7.png" --reference-steps 2 \
  --iterations 500 --name demo-cancel --out "$work/cancel" > /dev/null 2>&1 &
client_pid=$!
job=$(running_job 3)
[ -n "$job" ] || fail "the job did not reach step 3"
"$ganctl" --server "$addr" jobs cancel "$job" > /dev/null
wait "$client_pid" 2>/dev/null || true
for _ in $(seq 1 100); do
  "$ganctl" --server "$addr" --json jobs get "$job" | grep -q JOB_STATE_CANCELLED && break
  sleep 0.1
done
"$ganctl" --server "$addr" --json jobs get "$job" | grep -q JOB_STATE_CANCELLED || fail "job not cancelled"
"$ganctl" --server "$addr" models list | grep -q "^demo-cancel " && fail "a cancelled job published a model"

step "kill -9 during the fine-tune: the one-shot job resumes from its checkpoint"
"$ganctl" --server "$addr" --timeout 0 adapt --model demo --one-shot "$work/target/seed7.png" --reference-steps 3 \
  --iterations 30 --preview-every 0 --name demo-crash --out "$work/crash" > /dev/null 2>&1 &
client_pid=$!
job=$(running_job 8)
[ -n "$job" ] || fail "the job did not reach step 8"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
wait "$client_pid" 2>/dev/null || true
start_server server2.log
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" --timeout 0 jobs watch "$job" --after-seq 0 > "$work/resume.out" 2>&1 \
  || fail "resumed job did not succeed: $(tail -3 "$work/resume.out")"
grep -q "job $job resuming from its checkpoint at step" "$work/server2.log" || fail "the job did not resume"
"$ganctl" --server "$addr" generate --model demo-crash --seeds 1 --out "$work/crash_gen" 2> /dev/null || fail "resumed model"
echo "oneshot e2e: all steps passed"
