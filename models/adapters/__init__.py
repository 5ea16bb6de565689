"""Re-scoring adapters, found by name through the entry-point group ``vigil.rescoring_adapters``.

Vigil declares ``torchscript`` and ``module`` in its own pyproject.toml; a site adds its own by
declaring, in its own package, e.g.::

    [project.entry-points."vigil.rescoring_adapters"]
    mysite = "mysite_ai.adapter:MyAdapter"     # a subclass of RescoringAdapter

and installing that package into Vigil's environment — no change to Vigil itself.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from vigil.errors import InvalidInputError

from .base import AdapterSpec, PreprocessSpec, RescoringAdapter, load_spec

GROUP = "vigil.rescoring_adapters"

__all__ = [
    "GROUP",
    "AdapterSpec",
    "PreprocessSpec",
    "RescoringAdapter",
    "adapter_class",
    "available_adapters",
    "load_spec",
    "make_adapter",
]


def available_adapters() -> dict[str, str]:
    """Adapter name -> "module:Class" for every installed entry point of the group."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def adapter_class(name: str) -> type[RescoringAdapter]:
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in eps:
        raise InvalidInputError(
            f"no re-scoring adapter named {name!r}; installed: {', '.join(sorted(eps)) or 'none'}. "
            f"Fix: use one of those, or install a package declaring it in the entry-point group "
            f"{GROUP!r}"
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, RescoringAdapter)):
        raise InvalidInputError(
            f"adapter {name!r} ({eps[name].value}) is not a RescoringAdapter subclass"
        )
    return cls


def make_adapter(spec: AdapterSpec, name: str | None = None) -> RescoringAdapter:
    """The adapter for ``spec`` (``name`` overrides the spec's ``adapter`` key)."""
    return adapter_class(name or spec.adapter)(spec)
