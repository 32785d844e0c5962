#!/usr/bin/env bash
# Quick start, part 2: create .venv, install the service with its test tools, lint, type-check, test.
# Everything it needs comes from package registries (PyPI, npm, Debian); see scripts/tools.sh.
# Extra arguments go to pytest (e.g. scripts/test.sh -k middleware).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'  # bench: the peers the benchmark smoke test checks
bash scripts/tools.sh
export PATH="$PWD/.tools/bin:$PATH"
.venv/bin/ruff check service tests bench
.venv/bin/ruff format --check service tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
