#!/usr/bin/env bash
# One command: set up and run the demo (EHR sandbox, imaging server, sample studies, viewer).
# Extra arguments go to `smart-imaging demo`, e.g. scripts/demo.sh --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/smart-imaging demo "$@"
