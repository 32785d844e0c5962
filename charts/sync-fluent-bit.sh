#!/usr/bin/env bash
# Keep the charts' copies of the Fluent Bit configuration identical to fluent-bit/ (the one source of truth).
# Helm cannot read files outside a chart, so each chart ships files/fluent-bit/, a verbatim copy of what it runs:
#   tracking-service         sidecar.yaml, filters.yaml, output-*.yaml   (the sidecar)
#   tracking-logs-collector  node.yaml, filters.yaml, output-*.yaml      (the node DaemonSet)
#   sync-fluent-bit.sh          copy, removing stale files
#   sync-fluent-bit.sh --check  exit 1 and list the differences when a copy has drifted (used by the tests)
set -euo pipefail
charts=$(cd "$(dirname "$0")" && pwd)
src="$charts/../fluent-bit"
[ -d "$src" ] || { echo "no $src" >&2; exit 2; }

entry_of() {
  case "$1" in
    tracking-service) echo sidecar.yaml ;;
    tracking-logs-collector) echo node.yaml ;;
  esac
}

selected() {  # the files chart $1 ships
  { entry_of "$1"; echo filters.yaml; find "$src" -maxdepth 1 -type f -name 'output-*.yaml' -printf '%f\n'; } | sort
}

drift=0
for chart in tracking-service tracking-logs-collector; do
  dst="$charts/$chart/files/fluent-bit"
  mkdir -p "$dst"
  if [ "${1:-}" = --check ]; then
    while read -r f; do
      cmp -s "$src/$f" "$dst/$f" || { echo "drift: $chart/files/fluent-bit/$f differs from fluent-bit/$f"; drift=1; }
    done < <(selected "$chart")
    while read -r f; do
      selected "$chart" | grep -qxF "$f" || { echo "drift: $chart/files/fluent-bit/$f is not one of the files it ships"; drift=1; }
    done < <(find "$dst" -maxdepth 1 -type f -printf '%f\n' | sort)
  else
    find "$dst" -maxdepth 1 -type f -delete
    while read -r f; do cp "$src/$f" "$dst/$f"; done < <(selected "$chart")
    echo "copied $(selected "$chart" | wc -l) files from fluent-bit/ to $dst"
  fi
done
if [ "${1:-}" = --check ]; then
  [ "$drift" = 0 ] && echo "every chart's files/fluent-bit is in step with fluent-bit/"
  exit "$drift"
fi
