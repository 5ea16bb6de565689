#!/usr/bin/env bash
# The test command: sets up .venv and the Debian test servers, lints, runs the whole suite
# (every store test on SQLite and on PostgreSQL at 127.0.0.1:5432). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh
export DO_NOT_TRACK=1
.venv/bin/ruff check .
mkdir -p test-artifacts
exec .venv/bin/python -m pytest "$@"
