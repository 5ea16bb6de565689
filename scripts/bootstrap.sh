#!/usr/bin/env bash
# Create (or reuse) the local virtual environment .venv with Vigil and its test tools installed.
# Idempotent: does nothing when pyproject.toml has not changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Vigil needs Python 3.11 or newer on PATH" >&2; exit 1; }

# the compiled hot path (setup.py) is rebuilt whenever its sources change
stamp_want="$(cat pyproject.toml setup.py scripts/bootstrap.sh \
  connectors/{framing,hl7text,parse,phi,labeller,mapper,rows}.py | sha256sum | cut -d' ' -f1)"
stamp_file=.venv/.vigil-bootstrap-stamp
if [ -x .venv/bin/python ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi

echo "setting up .venv with $PY ..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: 2.13.0 is a CPU build on this machine's disk; our range accepts it, so the
# next step installs no other torch (a bare `torch` would pull a multi-GB CUDA build).
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
echo "$stamp_want" > "$stamp_file"
echo ".venv ready" >&2
