"""Build step for the HL7 hot path: compile it to C with mypyc (the rest of Vigil stays Python).

Why mypyc: a backfill parses and maps millions of messages, and the mapper's time is spread thin
over many small Python functions (field look-ups, timestamps, the labeller's bookkeeping); no
single hot spot is left to rewrite (bench/README.md). mypyc, the compiler mypy's own releases are
built with, turns these type-annotated modules into C extensions unchanged, and removes the
interpreter's share (~1.5x fewer instructions per message, `bench/bench_parse.py`). The Python
source stays the truth: the modules run as Python when they are not built, and
``connectors/__init__.py`` falls back to the source when it changed after the build.

``VIGIL_COMPILE=0`` skips the build (pure Python, slower); so does a missing C compiler (the
extensions are optional: the install goes on without them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

# Modules on the hot path of `vigil ingest` and `vigil listen`, compiled together.
COMPILED_MODULES = [
    "connectors/framing.py",
    "connectors/hl7text.py",
    "connectors/parse.py",
    "connectors/phi.py",
    "connectors/labeller.py",
    "connectors/mapper.py",
    "connectors/rows.py",
]
STAMP = Path("connectors") / "_compiled.json"


def _ext_modules() -> list:
    if os.environ.get("VIGIL_COMPILE", "1") == "0":
        STAMP.unlink(missing_ok=True)
        return []
    from mypyc.build import mypycify

    exts = mypycify(COMPILED_MODULES, opt_level="3")
    for ext in exts:
        ext.optional = True  # no C compiler: install as Python rather than fail
    # What was compiled, by content: connectors/__init__.py runs the Python source instead of
    # a stale build (an edit made after `pip install`).
    digests = {
        Path(m).stem: hashlib.sha256(Path(m).read_bytes()).hexdigest() for m in COMPILED_MODULES
    }
    STAMP.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return exts


setup(ext_modules=_ext_modules())
