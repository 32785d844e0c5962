#!/usr/bin/env bash
# Quick start, part 1: create .venv, install the service, run it (extra arguments go to `python -m service`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/python -m service "$@"
