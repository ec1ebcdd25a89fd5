#!/usr/bin/env bash
# End to end: the real ganserve binary driven by the real ganctl.
# Usage: e2e_test.sh BUILD_DIR [SHARED_DIR]
set -euo pipefail
build=$1
shared=${2:-}
ganserve=$build/server/ganserve
ganctl=$build/client/ganctl
source "$(dirname "$0")/lib.sh"

step "demo model pack (random generator, random CLIP, synthetic vocabulary)"
"$ganctl" local make-demo --out "$work/models" --resolution 32 2>&1
"$ganctl" local inspect --checkpoint "$work/models/demo/generator.safetensors" > "$work/inspect.json"
grep -q '"resolution": 32' "$work/inspect.json" || fail "inspect did not report 32 px"

step "start ganserve"
"$ganserve" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --http_listen 127.0.0.1:0 --data_dir "$work/data" \
  --model_repository "$work/models" --device cpu --log_format json --checkpoint_every 5 2> "$work/server.log" &
server_pid=$!
port=$(server_port "$work/server.log")
mport=$(grep -o 'metrics on [^ ]* (port [0-9]*' "$work/server.log" | grep -o '[0-9]*$')
addr=127.0.0.1:$port
# Every log line is one JSON object.
head -3 "$work/server.log" | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' || fail "log is not JSON lines"

step "health (waits for readiness)"
ok=0
for _ in $(seq 1 100); do
  if "$ganctl" --server "$addr" health > /dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || fail "server never became SERVING"
"$ganctl" health --server "$addr" --service liveness | grep -q SERVING || fail "liveness"

step "models"
"$ganctl" --server "$addr" models list | grep -q '^demo  generator  ready  32px' || fail "models list"
"$ganctl" --server "$addr" models list | grep -q '^demo-clip  clip  ready' || fail "demo CLIP not ready"
"$ganctl" --server "$addr" jobs list | grep -q "no jobs" || fail "jobs list"
"$ganctl" --server "$addr" --json models get demo | python3 -c 'import json,sys; m=json.load(sys.stdin); assert m["resolution"]==32, m'

step "generate"
"$ganctl" --server "$addr" generate --model demo --seeds 1-6 --batch-size 4 --out "$work/out" 2> "$work/gen.log"
for s in 1 2 3 4 5 6; do [ -s "$work/out/seed$s.png" ] || fail "missing seed$s.png"; done
[ -s "$work/out/grid.png" ] || fail "missing grid.png"
"$ganctl" --server "$addr" generate --model demo --seeds 3 --out "$work/out2" 2> /dev/null
same_pixels "$work/out/seed3.png" "$work/out2/seed3.png" || fail "the same seed gave a different image"
"$ganctl" --server "$addr" generate --model demo --count 2 --format jpeg --return-latents --out "$work/out3" 2> /dev/null
[ -s "$work/out3/seed0.jpg" ] && [ -s "$work/out3/seed0_wplus.npy" ] || fail "jpeg/latent output"

step "HTTP/JSON: curl lists models, samples as NDJSON and gets gRPC's errors as HTTP statuses"
hport=$(grep -o 'HTTP/JSON gateway on [^ ]* (port [0-9]*' "$work/server.log" | grep -o '[0-9]*$')
[ -n "$hport" ] || fail "the HTTP gateway did not report its port"
curl -sf "http://127.0.0.1:$hport/v1/models" | python3 -c '
import json, sys
assert "demo" in [m["name"] for m in json.load(sys.stdin)["models"]]' || fail "GET /v1/models"
curl -sf "http://127.0.0.1:$hport/v1/models/demo:generate" -d '{"seeds": [1, 2], "format": "IMAGE_FORMAT_PNG"}' \
  | python3 -c '
import base64, json, sys
imgs = [i for line in sys.stdin for i in json.loads(line)["images"]]
assert len(imgs) == 2 and all(base64.b64decode(i["data"])[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)' \
  || fail "POST /v1/models/demo:generate"
code=$(curl -s -o "$work/http_err.json" -w '%{http_code}' "http://127.0.0.1:$hport/v1/models/nope")
[ "$code" = 404 ] && grep -q '"NOT_FOUND"' "$work/http_err.json" || fail "unknown model over HTTP: $code"
curl -sf "http://127.0.0.1:$hport/v1/openapi.json" -o "$work/openapi.json" || fail "GET /v1/openapi.json"

step "HTTP/JSON: curl drives sample -> adapt -> generate on the adapted model -> invert -> edit"
h="http://127.0.0.1:$hport"
curl -sf "$h/v1/models/demo:generate?format=png" -d '{"seeds": [5]}' -o "$work/curl_photo.png" || fail "curl ?format=png"
curl -sfN -H 'Accept: text/event-stream' "$h/v1/jobs:adapt" \
  -d '{"model": "demo", "sourceText": "photo", "targetText": "watercolor", "iterations": 3, "outputName": "demo-curl",
       "layerPreset": "LAYER_PRESET_NO_FINE"}' > "$work/curl_adapt.sse" || fail "curl adapt"
grep -Eq '"result": ?"demo-curl"' "$work/curl_adapt.sse" || fail "curl adapt: $(tail -3 "$work/curl_adapt.sse")"
curl -sf "$h/v1/models/demo-curl:generate" -d '{"seeds": [1]}' | grep -Eq '"model": ?"demo-curl"' \
  || fail "curl generate on the adapted model"
/usr/bin/python3 -c 'import base64, json, sys
print(json.dumps({"model": "demo", "steps": 10, "image": base64.b64encode(open(sys.argv[1], "rb").read()).decode()}))' \
  "$work/curl_photo.png" > "$work/curl_invert.json"
curl -sf "$h/v1/jobs:invert" -d @"$work/curl_invert.json" > "$work/curl_invert.ndjson" || fail "curl invert"
curl_inv=$(grep -Eo '"result": ?"inv-[0-9a-f]*"' "$work/curl_invert.ndjson" | grep -o 'inv-[0-9a-f]*' | head -1)
[ -n "$curl_inv" ] || fail "curl invert: $(tail -2 "$work/curl_invert.ndjson")"
dir=$(/usr/bin/python3 -c 'print(",".join(["0.5"] * 128))')
curl -sf "$h/v1/models/demo:edit?format=png" -o "$work/curl_edit.png" -d "{\"renderModel\": \"demo-curl\",
  \"inversionId\": \"$curl_inv\", \"direction\": {\"direction\": {\"space\": \"LATENT_SPACE_W\",
  \"values\": {\"shape\": [128], \"data\": [$dir]}}, \"strengths\": [-2, 0, 2]}}" || fail "curl edit"
[ "$(head -c 4 "$work/curl_edit.png" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || fail "curl edit is not a PNG"
curl -sf -X DELETE "$h/v1/models/demo-curl" > /dev/null || fail "curl delete"

step "errors are one line and a non-zero exit"
set +e
msg=$("$ganctl" --server "$addr" generate --model nope --seeds 1 --out "$work/x" 2>&1); rc=$?
set -e
[ "$rc" = 1 ] || fail "unknown model exit code $rc"
echo "$msg" | grep -q "NOT_FOUND: no model named 'nope'" || fail "unknown model message: $msg"
set +e
"$ganctl" --server "$addr" edit --model demo --seeds 1 --neutral "a face" --target "a smiling face" --clip demo-clip \
  > "$work/edit.log" 2>&1; rc=$?
# Without --clip the StyleCLIP default (ViT-B/32, not in the demo pack) is named in the error.
"$ganctl" --server "$addr" edit --model demo --seeds 1 --neutral "a face" --target "a smiling face" \
  > "$work/edit_noclip.log" 2>&1; rc4=$?
# Every request field is reachable with --set; an unknown one is refused by name.
"$ganctl" --server "$addr" generate --model demo --seeds 1 --set no_such_field=1 --out "$work/x" \
  > "$work/bad_set.log" 2>&1; rc5=$?
"$ganctl" --server 127.0.0.1:1 --timeout 2 health > "$work/unreach.log" 2>&1; rc2=$?
"$ganctl" --server "$addr" adapt --model demo --to "x" --iterations 99999 > "$work/bad_adapt.log" 2>&1; rc3=$?
set -e
[ "$rc" = 1 ] && grep -q "FAILED_PRECONDITION.*PrepareGlobalDirections" "$work/edit.log" \
  || fail "a text edit before the statistics exist should name PrepareGlobalDirections: $(cat "$work/edit.log")"
[ "$rc2" = 3 ] && grep -q "cannot reach" "$work/unreach.log" || fail "unreachable server: rc=$rc2"
[ "$rc3" = 1 ] && grep -q "INVALID_ARGUMENT: iterations must be in \[0, 5000\]" "$work/bad_adapt.log" \
  || fail "bad adapt request: $(cat "$work/bad_adapt.log")"
[ "$rc4" = 1 ] && grep -q "FAILED_PRECONDITION.*clip-vit-b-32.*demo-clip" "$work/edit_noclip.log" \
  || fail "a text edit without --clip should name the StyleCLIP default and the installed CLIPs: $(cat "$work/edit_noclip.log")"
[ "$rc5" = 1 ] && grep -q "INVALID_ARGUMENT: --set.*no_such_field" "$work/bad_set.log" \
  || fail "an unknown --set field: $(cat "$work/bad_set.log")"

if true; then
  step "adapt: a real StyleGAN-NADA job streams progress and previews, then its model serves samples"
  "$ganctl" --server "$addr" --timeout 0 adapt --model demo --from photo --to "pencil sketch" --iterations 4 \
    --preview-every 2 --snapshot-every 2 --name demo-sketch --request-id e2e-1 --preset no_fine \
    --set adam_steps=ADAM_STEPS_SHARED \
    --out "$work/adapt" > "$work/adapt.out" 2> "$work/adapt.err" || fail "adapt: $(cat "$work/adapt.err")"
  grep -q "^demo-sketch$" "$work/adapt.out" || fail "adapt did not print the new model"
  [ -s "$work/adapt/preview_source.png" ] && [ -s "$work/adapt/preview_4.png" ] || fail "preview grids missing"
  "$ganctl" --server "$addr" models list | grep -q "^demo-sketch  adapted_generator  ready" || fail "adapted model not listed"
  "$ganctl" --server "$addr" generate --model demo-sketch --seeds 1-2 --out "$work/sketch" 2> /dev/null
  [ -s "$work/sketch/seed1.png" ] || fail "adapted model did not render"
  cmp -s "$work/sketch/seed1.png" "$work/out/seed1.png" && fail "adapted model renders the same as its base"
  # The step-2 snapshot renders, and promoted it outlives the job.
  "$ganctl" --server "$addr" models list | grep -q "^demo-sketch@2  adapted_generator  unloaded" || fail "snapshot not listed"
  "$ganctl" --server "$addr" models promote demo-sketch@2 --name demo-sketch-early | grep -q "^promoted demo-sketch@2" \
    || fail "promote"
  "$ganctl" --server "$addr" generate --model demo-sketch-early --seeds 1 --out "$work/early" 2> /dev/null
  [ -s "$work/early/seed1.png" ] || fail "the promoted snapshot did not render"
  # Out as files the official tools load; ganctl's own loader and (when installed)
  # torch.load read them back.
  mkdir -p "$work/export"
  "$ganctl" --server "$addr" models export demo-sketch -o "$work/export/sketch.pt" > /dev/null || fail "export"
  "$ganctl" --server "$addr" models export demo-sketch --format safetensors -o "$work/export/sketch.safetensors" \
    > /dev/null || fail "export safetensors"
  for f in sketch.pt sketch.safetensors; do
    "$ganctl" local inspect --checkpoint "$work/export/$f" | python3 -c 'import json,sys; m=json.load(sys.stdin); assert m["resolution"]==32, m' \
      || fail "exported $f does not load"
  done
  # ... and back in under a new name, as a user would bring a model.
  "$ganctl" --server "$addr" models import "$work/export/sketch.pt" --name sketch-imported --domain "pencil sketch" \
    > /dev/null || fail "import"
  "$ganctl" --server "$addr" models list | grep -q "^sketch-imported  generator  ready  32px" || fail "imported model not ready"
  # Residency by hand: pinned, unloaded (listed as unloaded), rendered again (loads on use).
  "$ganctl" --server "$addr" models load sketch-imported --pin | grep -q "^loaded sketch-imported (pinned)" || fail "models load"
  "$ganctl" --server "$addr" models list | grep -q "^sketch-imported  generator  ready  32px  pinned  resident" \
    || fail "pinned model not listed as pinned and resident"
  "$ganctl" --server "$addr" models unload sketch-imported > /dev/null || fail "models unload"
  "$ganctl" --server "$addr" models list | grep -q "^sketch-imported  generator  unloaded" || fail "unloaded model not listed so"
  "$ganctl" --server "$addr" generate --model sketch-imported --seeds 1 --out "$work/imported" 2> /dev/null
  [ -s "$work/imported/seed1.png" ] || fail "an unloaded model did not load on use"
  "$ganctl" --server "$addr" models import "$work/models/demo-clip/clip.safetensors" "$work/models/demo-clip/vocab.txt" \
    --kind clip --name clip-imported | grep -q "^imported clip-imported (clip" || fail "CLIP import"
  cp -r "$work/models/demo" "$work/models/demo-copy"
  "$ganctl" --server "$addr" models rescan | grep -q "^added: demo-copy" || fail "rescan did not find a folder added on disk"
  if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
    /usr/bin/python3 -c 'import sys, torch; c = torch.load(sys.argv[1], weights_only=True); assert set(c) == {"g_ema", "latent_avg"}, c.keys()' \
      "$work/export/sketch.pt" || fail "torch.load of the export"
  fi
  # The same request_id and payload attaches to the finished job instead of training again.
  "$ganctl" --server "$addr" --timeout 0 adapt --model demo --from photo --to "pencil sketch" --iterations 4 \
    --preview-every 2 --snapshot-every 2 --name demo-sketch --request-id e2e-1 --preset no_fine \
    --set adam_steps=ADAM_STEPS_SHARED \
    --out "$work/adapt2" > "$work/adapt2.out" 2>&1 || true
  # Two: this one and the adaptation curl ran over HTTP.
  "$ganctl" --server "$addr" jobs list | grep -c "adapt  succeeded" | grep -q "^2$" || fail "idempotent retry made a second job"
  job=$("$ganctl" --server "$addr" --json jobs list | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["id"])')
  "$ganctl" --server "$addr" --json jobs watch "$job" --after-seq 3 > "$work/watch.jsonl"
  python3 - "$work/watch.jsonl" <<'PY' || fail "watch replay"
import json, sys
seqs = [int(json.loads(l).get("seq", 0)) for l in open(sys.argv[1]) if l.strip()]
assert seqs and seqs[0] == 4 and seqs == sorted(seqs), seqs
PY
  # A lightweight domain: a few KB on disk, rendered on the base's weights.
  "$ganctl" --server "$addr" --timeout 0 adapt --model demo --from photo --to "pencil sketch" --iterations 3 \
    --parameterization domain_modulation --name demo-dm --out "$work/adapt_dm" > "$work/adapt_dm.out" \
    2> "$work/adapt_dm.err" || fail "lightweight adapt: $(cat "$work/adapt_dm.err")"
  "$ganctl" --server "$addr" models list | grep -q "^demo-dm  adapted_generator  ready.*domain_modulation over demo" \
    || fail "lightweight domain not listed: $("$ganctl" --server "$addr" models list)"
  "$ganctl" --server "$addr" generate --model demo-dm --seeds 1-2 --out "$work/dm" 2> /dev/null
  cmp -s "$work/dm/seed1.png" "$work/out/seed1.png" && fail "the lightweight domain renders the same as its base"
  step "invert a photo, then render its latent through the base and the adapted model"
  "$ganctl" --server "$addr" --timeout 0 invert "$work/out/seed5.png" --model demo --steps 30 --preview-every 10 \
    --out "$work/inv" > "$work/inv.out" 2> "$work/inv.err" || fail "invert: $(cat "$work/inv.err")"
  inv=$(grep '^inv-' "$work/inv.out")
  [ -n "$inv" ] || fail "invert printed no inversion id"
  for f in reconstruction.png latent.npy before_after.png preview_source.png; do
    [ -s "$work/inv/$f" ] || fail "invert did not write $f"
  done
  "$ganctl" --server "$addr" generate --model demo-sketch --inversion "$inv" --out "$work/inv_sketch" 2> /dev/null \
    || fail "inversion through the adapted model"
  [ -s "$work/inv_sketch/image0.png" ] || fail "no image for the inversion in the adapted domain"
  set +e
  msg=$("$ganctl" --server "$addr" generate --model demo --inversion inv-ffff --out "$work/x" 2>&1); rc=$?
  set -e
  [ "$rc" = 1 ] && echo "$msg" | grep -q "NOT_FOUND" || fail "unknown inversion: $msg"
  step "edit: a w direction swept over strengths, rendered through the adapted model"
  /usr/bin/python3 -c "import numpy as np; np.save('$work/dir.npy', np.full(128, 0.5, np.float32))"
  "$ganctl" --server "$addr" edit --model demo --render-model demo-sketch --seeds 1-2 --direction "$work/dir.npy" \
    --alpha=-2,0,2 --out "$work/edit" 2> "$work/edit_ok.err" || fail "edit: $(cat "$work/edit_ok.err")"
  for i in 0 1 2 3 4 5; do [ -s "$work/edit/edit$i.png" ] || fail "edit image $i missing"; done
  step "edit with text: global-direction statistics, then the inverted photo edited and rendered in the adapted domain"
  "$ganctl" --server "$addr" --timeout 0 prepare-global --model demo --clip demo-clip --samples 200 --images 2 \
    --batch 4 --out "$work/stats" > "$work/stats.out" 2> "$work/stats.err" || fail "prepare-global: $(cat "$work/stats.err")"
  grep -q "statistics ready: demo/demo-clip" "$work/stats.out" || fail "prepare-global result: $(cat "$work/stats.out")"
  "$ganctl" --server "$addr" edit --model demo --render-model demo-sketch --inversion "$inv" --neutral "a face" \
    --target "a smiling face" --alpha=-3,0,3 --beta 0.01 --clip demo-clip --out "$work/gedit" > "$work/gedit.out" 2> "$work/gedit.err" \
    || fail "global-direction edit: $(cat "$work/gedit.err")"
  grep -q "S channels moved" "$work/gedit.out" || fail "edit did not report moved channels: $(cat "$work/gedit.out")"
  for f in edit0.png edit1.png edit2.png strip0.png; do [ -s "$work/gedit/$f" ] || fail "edit did not write $f"; done
  cmp -s "$work/gedit/edit0.png" "$work/gedit/edit2.png" && fail "alpha -3 and +3 rendered the same image"
  step "edit by StyleCLIP latent optimization: the inversion optimised toward a text, progress streamed"
  "$ganctl" --server "$addr" --timeout 0 edit --model demo --render-model demo-sketch --inversion "$inv" --optimize \
    --target "a smiling face" --steps 4 --clip demo-clip --set latent_optimization.l2_lambda=0 --out "$work/opt" > "$work/opt.out" 2> "$work/opt.err" \
    || fail "latent optimization: $(cat "$work/opt.err")"
  grep -q "optimize input 0 step 4/4" "$work/opt.err" || fail "no optimization progress: $(cat "$work/opt.err")"
  [ -s "$work/opt/edit0.png" ] || fail "latent optimization wrote no image"
  step "a latent mapper: trained as a job (the identity loss turned off and said so), then edits in the adapted domain"
  "$ganctl" --server "$addr" --timeout 0 train-mapper --model demo --text "a smiling face" --steps 3 --train-latents 4 \
    --clip demo-clip --name demo-smile --out "$work/mapper" > "$work/mapper.out" 2> "$work/mapper.err" \
    || fail "train-mapper: $(cat "$work/mapper.err")"
  grep -q "id_lambda set to 0" "$work/mapper.err" || fail "train-mapper did not say it turned the identity loss off"
  grep -q "^mapper ready: demo-smile" "$work/mapper.out" || fail "train-mapper result: $(cat "$work/mapper.out")"
  "$ganctl" --server "$addr" models list | grep -q "^demo-smile  mapper  ready" || fail "the mapper is not listed"
  "$ganctl" --server "$addr" edit --model demo --render-model demo-sketch --inversion "$inv" --mapper demo-smile \
    --alpha=0,1 --out "$work/medit" 2> "$work/medit.err" || fail "mapper edit: $(cat "$work/medit.err")"
  for f in edit0.png edit1.png; do [ -s "$work/medit/$f" ] || fail "the mapper edit did not write $f"; done
  "$ganctl" --server "$addr" models delete demo-smile > /dev/null || fail "delete the mapper"
  "$ganctl" --server "$addr" models delete demo-sketch > /dev/null || fail "delete adapted model"
fi

step "metrics pass promtool"
python3 - "$mport" > "$work/metrics.txt" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode(), end="")
PY
grep -q 'ganserve_rpc_requests_total{code="OK",method="GenerateSamples"}' "$work/metrics.txt" || fail "rpc counter"
grep -q 'ganserve_images_generated_total{operation="generate"}' "$work/metrics.txt" || fail "images counter"
grep -q 'ganserve_jobs_total{kind="adapt",state="succeeded"} 3' "$work/metrics.txt" \
  || fail "jobs counter (the curl, the NADA and the lightweight adaptation)"
grep -q 'ganserve_training_steps_total{kind="adapt"} 10' "$work/metrics.txt" || fail "steps counter (3 + 4 + 3)"
grep -q '^ganserve_process_resident_memory_bytes [1-9]' "$work/metrics.txt" || fail "resident memory gauge"
if command -v promtool > /dev/null; then
  promtool check metrics < "$work/metrics.txt" || fail "promtool check metrics"
else
  echo "promtool not installed: metric lint skipped (scripts/install-deps.sh installs it)"
fi

if [ -n "$shared" ] && [ -f "$shared/fixtures/stylegan2/a1_g32_sd512_zip.pt" ]; then
  step "ganctl local generate reproduces the official outputs"
  fx=$shared/fixtures/stylegan2
  "$ganctl" local generate --checkpoint "$fx/a1_g32_sd512_zip.pt" --z-npy "$fx/a1/mix_z1.npy" \
    --mix-z-npy "$fx/a1/mix_z2.npy" --inject-index 3 --out-npy "$work/mix.npy" --out-png-dir "$work/png" 2> /dev/null
  "$ganctl" local generate --checkpoint "$fx/a1_g32_sd512_zip.pt" --wplus-npy "$fx/a1/wplus.npy" \
    --out-npy "$work/wplus.npy" --s-space-out-npz "$work/s.npz" 2> /dev/null
  /usr/bin/python3 - "$fx/a1" "$work" <<'PY'
import sys, numpy as np
ref, out = sys.argv[1], sys.argv[2]
d1 = np.abs(np.load(f"{out}/mix.npy") - np.load(f"{ref}/img_mix.npy")).max()
d2 = np.abs(np.load(f"{out}/wplus.npy") - np.load(f"{ref}/img_wplus.npy")).max()
d3 = np.abs(np.load(f"{out}/s.npz")["s"][0] - np.load(f"{ref}/s_space_wplus0.npy")).max()
print(f"max |diff|: mixing {d1:.2e}, w+ {d2:.2e}, S {d3:.2e}")
assert max(d1, d2, d3) <= 1e-4
PY
  [ -s "$work/png/image0.png" ] || fail "png output"

  step "ganctl local CLIP commands reproduce the official outputs"
  cf=$shared/fixtures/clip
  vocab=$shared/clip/bpe_simple_vocab_16e6.txt.gz
  "$ganctl" local tokenize --vocab "$vocab" --texts-json "$cf/refs/text20_prompts.json" --truncate --out-json "$work/tok.json"
  "$ganctl" local encode-text --clip "$cf/b1_clip_tiny_traced.pt" --vocab "$vocab" --truncate \
    --texts-json "$cf/refs/text20_prompts.json" --out-npy "$work/text.npy"
  "$ganctl" local encode-image --clip "$cf/b2_clip_tiny_state_dict.pt" --png "$cf/img_300x200.png" \
    --png "$cf/img_150x257.png" --out-npy "$work/img.npy"
  /usr/bin/python3 - "$cf/refs" "$work" <<'PY'
import json, sys, numpy as np
ref, out = sys.argv[1], sys.argv[2]
assert (np.array(json.load(open(f"{out}/tok.json"))) == np.load(f"{ref}/text20_tokens.npy")).all()
dt = np.abs(np.load(f"{out}/text.npy") - np.load(f"{ref}/encode_text_text20.npy")).max()
di = np.abs(np.load(f"{out}/img.npy") - np.load(f"{ref}/encode_image_png2.npy")).max()
print(f"tokens exact; max |diff|: encode_text {dt:.2e}, encode_image from PNG {di:.2e}")
assert max(dt, di) <= 1e-4
PY
else
  echo "shared/ fixtures absent: local parity step skipped"
fi

step "kill -9 during training: the job resumes from its checkpoint after a restart"
"$ganctl" --server "$addr" --timeout 0 adapt --model demo --to "watercolor" --iterations 150 --name demo-water \
  --preview-every 0 --out "$work/crash" > /dev/null 2>&1 &
client_pid=$!
crash_job=$(running_job 12)
[ -n "$crash_job" ] || fail "training job did not reach step 12"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
wait "$client_pid" 2>/dev/null || true
"$ganserve" --listen "$addr" --metrics_listen 127.0.0.1:0 --data_dir "$work/data" --model_repository "$work/models" \
  --device cpu --checkpoint_every 5 2> "$work/server2.log" &
server_pid=$!
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" --timeout 0 jobs watch "$crash_job" --after-seq 0 > "$work/resume.out" 2>&1 \
  || fail "resumed job did not succeed: $(tail -3 "$work/resume.out")"
"$ganctl" --server "$addr" --json jobs get "$crash_job" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["state"] == "JOB_STATE_SUCCEEDED" and j["result"] == "demo-water", j' || fail "resumed job state"
grep -q "job $crash_job resuming from its checkpoint at step" "$work/server2.log" || fail "the job did not resume from a checkpoint"
ls -a "$work/models" | grep -q '^\.tmp' && fail "a half-written model folder is left behind"
"$ganctl" --server "$addr" generate --model demo-water --seeds 1 --out "$work/water" 2> /dev/null || fail "resumed model"
"$ganctl" --server "$addr" generate --model demo-water --seeds 1-2 --out "$work/water_before" 2> /dev/null

step "kill -9 during an inversion, with a model write cut short: restart resumes, cleans up, renders the same"
"$ganctl" --server "$addr" --timeout 0 invert "$work/out/seed2.png" --model demo --steps 400 --preview-every 0 \
  --out "$work/inv_crash" > /dev/null 2>&1 &
client_pid=$!
inv_job=$(running_job 12 JOB_KIND_INVERT)
[ -n "$inv_job" ] || fail "inversion job did not reach step 12"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
wait "$client_pid" 2>/dev/null || true
# What a crash in the middle of publishing a model leaves: a hidden work folder with a
# half-written delta (writes go to a temp folder that is renamed when complete).
mkdir -p "$work/models/.tmp-job-0000000000000001"
head -c 100 "$work/models/demo-water/delta.safetensors" > "$work/models/.tmp-job-0000000000000001/delta.safetensors"
"$ganserve" --listen "$addr" --metrics_listen 127.0.0.1:0 --data_dir "$work/data" --model_repository "$work/models" \
  --device cpu --checkpoint_every 5 2> "$work/server3.log" &
server_pid=$!
for _ in $(seq 1 100); do "$ganctl" --server "$addr" health > /dev/null 2>&1 && break; sleep 0.2; done
"$ganctl" --server "$addr" --timeout 0 jobs watch "$inv_job" --after-seq 0 > "$work/inv_resume.out" 2>&1 \
  || fail "resumed inversion did not succeed: $(tail -3 "$work/inv_resume.out")"
grep -q "job $inv_job resuming from its checkpoint at step" "$work/server3.log" || fail "the inversion did not resume"
grep -q "removed 1 half-written model folder" "$work/server3.log" || fail "the half-written model folder was not cleaned"
ls -a "$work/models" | grep -q '^\.tmp' && fail "a half-written model folder is still there"
"$ganctl" --server "$addr" models list | grep -q "tmp" && fail "a half-written model is listed"
"$ganctl" --server "$addr" generate --model demo-water --seeds 1-2 --out "$work/water_after" 2> /dev/null
cmp -s "$work/water_before/seed1.png" "$work/water_after/seed1.png" && cmp -s "$work/water_before/seed2.png" \
  "$work/water_after/seed2.png" || fail "the finished model renders differently after the restart"

step "SIGTERM drains and exits 0"
kill -TERM "$server_pid"
set +e
wait "$server_pid"; rc=$?
set -e
server_pid=""
[ "$rc" = 0 ] || fail "server exit code $rc"
grep -q "shutdown complete" "$work/server3.log" || fail "no orderly shutdown"
echo "e2e: all steps passed"
