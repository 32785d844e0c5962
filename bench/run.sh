#!/usr/bin/env bash
# Run every benchmark and write bench/RESULTS.md + bench/results.png (about an hour on 2 cores for three Pythons).
#   bash bench/run.sh            full run
#   bash bench/run.sh --smoke    seconds-long run of every part: checks each variant's output, no timing
#   bash bench/run.sh --parts 1,3
# Load goes to 127.0.0.1 only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
if ! .venv/bin/python -c 'import structlog, pythonjsonlogger, loguru, asgi_correlation_id, starlette_context, matplotlib, service' 2>/dev/null; then
  .venv/bin/python -m pip install -q -e '.[bench]'
fi
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: apt-get install wrk"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench: wrk is not installed (apt-get install wrk); falling back to a small Python load generator" >&2
  fi
fi
mkdir -p bench/out
exec .venv/bin/python -m bench "$@"
