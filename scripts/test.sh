#!/usr/bin/env bash
# One command: set everything up (Orthanc, Chromium, Node.js, Python packages) and run the whole
# test suite. Extra arguments go to pytest, e.g. scripts/test.sh -k wado
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
