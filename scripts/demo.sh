#!/usr/bin/env bash
# The main job on the embedded default: a simulated hospital network into a fresh SQLite file
# in the per-user data folder, ingested and monitored, then the dashboard. Extra args go to
# `vigil demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DO_NOT_TRACK=1
exec .venv/bin/vigil demo "$@"
