#!/usr/bin/env bash
# Quick start, part 2: for each supported Python (3.11, 3.12, 3.13), create .venv-pyX.Y, install the
# service with its test tools, then lint, type-check and run the whole test suite on it.
# Everything it needs comes from package registries (PyPI, npm, Debian); see scripts/tools.sh.
# Interpreters are found with pyenv (`pyenv prefix X.Y`) or as pythonX.Y on PATH. Missing one fails
# under CI (CI=true) and is skipped with a warning elsewhere. TEST_PYTHONS="3.13" narrows the list.
# Extra arguments go to pytest (e.g. scripts/test.sh -k middleware).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
export PATH="$PWD/.tools/bin:$PATH"

find_python() {  # $1 = X.Y; prints the interpreter's path, or nothing
  local prefix
  if command -v pyenv >/dev/null 2>&1 && prefix=$(pyenv prefix "$1" 2>/dev/null) && [ -x "$prefix/bin/python$1" ]; then
    echo "$prefix/bin/python$1"
  elif command -v "python$1" >/dev/null 2>&1 && "python$1" -c '' 2>/dev/null; then
    command -v "python$1"
  else  # pyenv's install tree without pyenv on PATH
    local candidate
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1"; do
      if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
  fi
}

ran=0
for version in ${TEST_PYTHONS:-3.11 3.12 3.13}; do
  python=$(find_python "$version")
  if [ -z "$python" ]; then
    if [ "${CI:-}" = true ]; then echo "test: Python $version not found (pyenv or python$version on PATH)" >&2; exit 1; fi
    echo "test: Python $version not found; skipped (CI requires it)" >&2
    continue
  fi
  venv=".venv-py$version"
  echo "=== Python $version ($python) -> $venv"
  if [ ! -x "$venv/bin/python" ]; then "$python" -m venv "$venv"; fi
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e '.[test,bench]'  # bench: the peers the benchmark smoke test checks
  "$venv/bin/ruff" check service tests bench
  "$venv/bin/ruff" format --check service tests bench
  "$venv/bin/mypy" --python-version "$version"
  "$venv/bin/python" -m pytest "$@"
  ran=$((ran + 1))
done
if [ "$ran" = 0 ]; then echo "test: no supported Python found" >&2; exit 1; fi
echo "test: the suite passed on $ran Python version(s)"
