#!/usr/bin/env bash
# Every C++ file of the project is formatted as .clang-format says (clang-format 14).
#   tests/style/check_format.sh REPO_ROOT        check (exit 1 listing what differs)
#   tests/style/check_format.sh REPO_ROOT --fix  reformat in place
set -euo pipefail
cd "$1"
fmt=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$fmt" ] || { echo "clang-format not installed (scripts/install-deps.sh installs clang-format-14)"; exit 77; }
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v '^tests/fuzz/corpus/')
if [ "${2:-}" = --fix ]; then
  "$fmt" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$fmt" --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  printf 'not formatted (run tests/style/check_format.sh . --fix): %s\n' "${bad[@]}"
  exit 1
fi
echo "format: ${#files[@]} files formatted as .clang-format says"
