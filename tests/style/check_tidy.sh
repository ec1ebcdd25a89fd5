#!/usr/bin/env bash
# clang-tidy (the checks in .clang-tidy, findings are errors) on the C++ sources that the
# commits since BASE changed, compiled as the build compiles them.
#   tests/style/check_tidy.sh REPO_ROOT BUILD_DIR [BASE]   (BASE: $GANSERVE_TIDY_BASE, else HEAD~1)
# Headers are checked through the sources that include them.
set -euo pipefail
root=$1
build=$2
base=${3:-${GANSERVE_TIDY_BASE:-HEAD~1}}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
[ -n "$tidy" ] || { echo "clang-tidy not installed (scripts/install-deps.sh installs clang-tidy-14)"; exit 77; }
[ -f "$build/compile_commands.json" ] || { echo "no $build/compile_commands.json: build first"; exit 1; }
cd "$root"
git rev-parse --verify -q "$base^{commit}" > /dev/null || { echo "tidy: base $base not in history; nothing to compare"; exit 0; }
mapfile -t files < <(git diff --name-only --diff-filter=AMR "$base" -- 'core/*.cc' 'server/*.cc' 'client/*.cc' \
  | while read -r f; do grep -q "\"file\": \".*/$f\"" "$build/compile_commands.json" && echo "$f"; done)
if [ "${#files[@]}" -eq 0 ]; then
  echo "tidy: no compiled C++ source changed since $base"
  exit 0
fi
echo "tidy: ${#files[@]} source(s) changed since $base"
status=0
for f in "${files[@]}"; do
  if ! out=$("$tidy" -p "$build" --quiet "$f" 2>&1); then
    echo "$out" | grep -E "error:|warning:" | head -20
    status=1
  fi
done
[ "$status" = 0 ] && echo "tidy: clean"
exit $status
