#!/usr/bin/env bash
# Offline checks of deploy/: yamllint, `kubectl kustomize` of each overlay, schema
# validation of the rendered objects (npm kubernetes-models), promtool on the alert
# rules, and the dashboard's and rules' queries against the metrics the server exports.
# Usage: validate.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
deploy=$src/deploy
fail() { echo "FAIL: $*"; exit 1; }
skipped=()

if command -v yamllint > /dev/null; then
  yamllint -s -c "$src/.yamllint" "$deploy" || fail "yamllint"
  echo "yamllint: ok"
else
  skipped+=("yamllint (apt install yamllint)")
fi

rendered=()
if command -v kubectl > /dev/null; then
  for overlay in cpu gpu scale-out; do
    kubectl kustomize "$deploy/overlays/$overlay" > "$work/$overlay.yaml" || fail "kustomize $overlay"
    echo "kustomize $overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects"
    rendered+=("$work/$overlay.yaml")
  done
  grep -q 'nvidia.com/gpu: 1' "$work/gpu.yaml" || fail "the gpu overlay asks for no GPU"
  grep -q 'nvidia.com/gpu' "$work/cpu.yaml" && fail "the cpu overlay asks for a GPU"
  grep -q 'GANSERVE_AUTH_TOKENS_FILE' "$work/gpu.yaml" || fail "the gpu overlay lacks the security component"
  python3 - "$work/scale-out.yaml" <<'PY' || fail "scale-out overlay"
import sys
text = open(sys.argv[1]).read()
docs = text.split("\n---\n")
def doc(kind, name):
    for d in docs:
        if f"kind: {kind}\n" in d and f"  name: {name}\n" in d:
            return d
    sys.exit(f"no {kind} {name}")
deploy = doc("Deployment", "ganserve")
for want in ("replicas: 3", "type: RollingUpdate", "key: uri", "name: ganserve-db-app", "fieldPath: metadata.name",
             "nvidia.com/gpu: 1", "GANSERVE_AUTH_TOKENS_FILE"):
    if want not in deploy and want not in text:
        sys.exit(f"the Deployment lacks {want!r}")
if "clusterIP: None" not in doc("Service", "ganserve-headless"):
    sys.exit("the headless Service is not headless")
for want in ("GANSERVE_ARTIFACT_STORE", "name: ganserve-s3", "AWS_SECRET_ACCESS_KEY", "volumeClaimTemplate:"):
    if want not in deploy:
        sys.exit(f"the Deployment lacks {want!r} (replicas share files through the object store)")
if "kind: PersistentVolumeClaim\n" in text:
    sys.exit("the replicas must not share a volume")
if "ganserve_jobs_queued" not in doc("ScaledObject", "ganserve"):
    sys.exit("the ScaledObject does not scale on the queue")
doc("Cluster", "ganserve-db")
for line in text.splitlines():
    if "GANSERVE_MAX_CONNECTION_AGE_SECONDS" in line and '"0"' in line:
        sys.exit("connections never recycled")
print("scale-out: 3 replicas, rolling, headless Service, S3 shared files, own volumes, CloudNativePG, KEDA")
PY
else
  skipped+=("kubectl kustomize and schema validation (kubectl not installed)")
fi

if [ "${#rendered[@]}" -gt 0 ]; then
  node_dir=$work/node
  if [ ! -d "$node_dir/node_modules/@kubernetes-models/keda" ] && command -v npm > /dev/null; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --silent --no-audit --no-fund kubernetes-models@5.1.0 \
      @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/keda@2.0.0 \
      @kubernetes-models/cloudnative-pg@2.0.0 js-yaml@4.1.0 > "$work/npm.log" 2>&1) || true
  fi
  if [ -d "$node_dir/node_modules/kubernetes-models" ] && command -v node > /dev/null; then
    cp "$src/tests/deploy/validate_k8s.mjs" "$node_dir/"
    for f in "${rendered[@]}"; do
      node "$node_dir/validate_k8s.mjs" < "$f" || fail "schema validation of $(basename "$f")"
    done
  else
    skipped+=("schema validation (node or npm packages unavailable: $(tail -1 "$work/npm.log" 2>/dev/null))")
  fi
fi

# promtool checks the rule groups: the PrometheusRule's spec, de-indented.
awk 'found { print substr($0, 3) } /^spec:/ { found = 1 }' "$deploy/base/prometheusrule.yaml" > "$work/rules.yaml"
if command -v promtool > /dev/null; then
  promtool check rules "$work/rules.yaml" || fail "promtool check rules"
else
  skipped+=("promtool check rules (apt install prometheus)")
fi

# Every ganserve_* metric a query names must be one the server registers.
python3 - "$src" "$deploy/base/grafana/ganserve-dashboard.json" "$work/rules.yaml" <<'PY'
import json, re, sys
src, dash_path, rules_path = sys.argv[1:4]
exported = set(re.findall(r'Name\("(ganserve_[a-z_]+)"\)', open(f"{src}/server/metrics.cc").read()))
assert exported, "no metric names found in server/metrics.cc"
dash = json.load(open(dash_path))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
exprs += [t["query"] for t in dash["templating"]["list"] if "query" in t and isinstance(t["query"], str)]
exprs.append(open(rules_path).read())
missing = set()
for e in exprs:
    for name in re.findall(r"\bganserve_[a-z_]+", e):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base not in exported and name not in exported:
            missing.add(name)
if missing:
    sys.exit(f"queries name metrics the server does not export: {sorted(missing)}")
print(f"dashboard: {len(dash['panels'])} panels; queries name only exported metrics ({len(exported)} exported)")
PY

for s in "${skipped[@]}"; do echo "skipped: $s"; done
echo "deploy checks passed"
