#!/usr/bin/env bash
# Keep the chart's copy of the Fluent Bit configuration identical to fluent-bit/ (the one source of truth).
# Helm cannot read files outside the chart, so the chart ships files/fluent-bit/, a verbatim copy of the
# Kubernetes-relevant files: every *.yaml except compose*.yaml (plus any *.lua it references).
#   sync-fluent-bit.sh          copy, removing stale files
#   sync-fluent-bit.sh --check  exit 1 and list the differences when the copy has drifted (used by the tests)
set -euo pipefail
chart_dir=$(cd "$(dirname "$0")" && pwd)
src="$chart_dir/../../fluent-bit"
dst="$chart_dir/files/fluent-bit"

selected() {
  find "$src" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.lua' \) ! -name 'compose*.yaml' -printf '%f\n' | sort
}

[ -d "$src" ] || { echo "no $src" >&2; exit 2; }
mkdir -p "$dst"
if [ "${1:-}" = --check ]; then
  drift=0
  while read -r f; do
    cmp -s "$src/$f" "$dst/$f" || { echo "drift: files/fluent-bit/$f differs from fluent-bit/$f"; drift=1; }
  done < <(selected)
  while read -r f; do
    selected | grep -qxF "$f" || { echo "drift: files/fluent-bit/$f has no source in fluent-bit/"; drift=1; }
  done < <(find "$dst" -maxdepth 1 -type f -printf '%f\n' | sort)
  [ "$drift" = 0 ] && echo "files/fluent-bit is in step with fluent-bit/"
  exit "$drift"
fi
find "$dst" -maxdepth 1 -type f -delete
while read -r f; do cp "$src/$f" "$dst/$f"; done < <(selected)
echo "copied $(selected | wc -l) files from fluent-bit/ to $dst"
