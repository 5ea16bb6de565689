"""HL7 v2 connectors, in layers: transport (MLLP, files) -> parse -> map (profiles) -> store.

PHI is pseudonymised in the map layer, before anything reaches the store.

The hot path (framing, hl7text, parse, phi, labeller, mapper, rows) is compiled to C by mypyc when
Vigil is installed (setup.py). Python prefers a compiled module over its source, so an edit made
after the build would silently not run: this package checks the build's record of what it
compiled (``_compiled.json``, by content) and, if any source changed since, runs every compiled
module from its source instead and warns once. ``VIGIL_CONNECTORS_SOURCE=1`` runs the source on
purpose (a debugger, or the test that holds the build to the source's results).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent


def built_modules(folder: Path = _HERE) -> list[str]:
    """Names of the modules in ``folder`` that have a compiled extension beside their source."""
    out = set()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for p in folder.glob(f"*{suffix}"):
            name = p.name[: -len(suffix)]
            if (folder / f"{name}.py").exists():
                out.add(name)
    return sorted(out)


def stale_build(folder: Path = _HERE) -> list[str]:
    """The compiled modules to run from source: all of them if any source changed since the
    build (they call each other directly in C, so a partial mix could run old code)."""
    built = built_modules(folder)
    if not built:
        return []
    try:
        want = json.loads((folder / "_compiled.json").read_text())
    except (OSError, ValueError):
        want = {}
    for name in built:
        digest = hashlib.sha256((folder / f"{name}.py").read_bytes()).hexdigest()
        if want.get(name) != digest:
            return built
    return []


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the named modules' ``.py`` source ahead of their (stale) compiled extension."""

    def __init__(self, names: list[str], folder: Path) -> None:
        self.paths = {f"{__name__}.{n}": folder / f"{n}.py" for n in names}

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        p = self.paths.get(fullname)
        return importlib.util.spec_from_file_location(fullname, p) if p is not None else None


def compiled_in_use() -> list[str]:
    """Modules of this package that are loaded from a compiled extension right now."""
    return sorted(
        name.rpartition(".")[2]
        for name, mod in list(sys.modules.items())
        if name.startswith(f"{__name__}.")
        and not str(getattr(mod, "__file__", "") or "").endswith(".py")
        and getattr(mod, "__file__", None)
    )


if os.environ.get("VIGIL_CONNECTORS_SOURCE") == "1":
    sys.meta_path.insert(0, _SourceFirst(built_modules(), _HERE))
elif _stale := stale_build():
    sys.meta_path.insert(0, _SourceFirst(_stale, _HERE))
    warnings.warn(
        "connectors: the source changed after the compiled build; running it as Python "
        "(slower). Run ./scripts/bootstrap.sh to rebuild.",
        RuntimeWarning,
        stacklevel=2,
    )
