#!/usr/bin/env bash
# One command: set everything up (Orthanc, Chromium, Node.js, Python packages), then run the gates
# in order, stopping at the first that fails (each prints a one-line "==> stage" header):
#   1. ruff check src tests bench
#   2. ruff format --check src tests bench
#   3. mypy --strict on src (the [tool.mypy] config of pyproject.toml)
#   4. lint-imports (import-linter contracts); skipped, with a note, while the project has no
#      [tool.importlinter] section in pyproject.toml, no .importlinter and no [importlinter] in setup.cfg
#   5. the fast tier: pytest -m "not integration" (in-process, fakes; tests/support/tiers.py)
#   6. the integration tier: pytest -m integration (real servers; with stage 5, every test once)
# With arguments, they go to pytest and only a plain pytest run (a targeted run, e.g.
#   scripts/test.sh -k wado   or   scripts/test.sh tests/fast); the other stages are skipped with
# a note. CI (.ci/run) runs it without arguments: every gate. PYTEST_ADDOPTS reaches both pytest
# stages. A pytest stage that runs no test at all (exit code 5) fails too.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==> %s\n' "$*"; }

run_pytest() {  # pytest exits 5 when it ran no test: fail loudly instead of passing
  local code=0
  .venv/bin/python -m pytest -q "$@" || code=$?
  if [ "$code" -eq 5 ]; then
    echo "test.sh: pytest ran no tests (exit code 5): failing" >&2
  fi
  return "$code"
}

has_import_contracts() {  # where lint-imports looks for its configuration
  [ -f .importlinter ] || grep -q '^\[tool\.importlinter\]' pyproject.toml ||
    { [ -f setup.cfg ] && grep -q '^\[importlinter\]' setup.cfg; }
}

stage "setup: scripts/setup.sh --test"
scripts/setup.sh --test

if [ "$#" -gt 0 ]; then
  stage "skipped: ruff, mypy, lint-imports and the fast tier (arguments given: a targeted pytest run)"
  stage "pytest $*"
  run_pytest "$@"
  exit 0
fi

stage "ruff check src tests bench"
.venv/bin/ruff check src tests bench

stage "ruff format --check src tests bench"
.venv/bin/ruff format --check src tests bench

stage "mypy --strict src"
.venv/bin/mypy --strict src

if has_import_contracts; then
  stage "lint-imports (import-linter contracts)"
  .venv/bin/lint-imports
else
  stage "skipped: lint-imports (no [tool.importlinter] in pyproject.toml and no .importlinter yet)"
fi

stage "fast tier: pytest -m 'not integration'"
run_pytest -m "not integration"

stage "integration tier: pytest -m integration (with the fast tier: every test, each once)"
run_pytest -m integration
