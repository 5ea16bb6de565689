"""Adapter for a torch ``nn.Module`` class (import path) plus a weights file.

Weights may be safetensors (preferred: no code runs when loading) or a state dict saved with
``torch.save`` (loaded with ``weights_only=True``, so a pickle cannot run code either).
"""

from __future__ import annotations

import importlib

from vigil.errors import InvalidInputError

from .base import RescoringAdapter


def import_class(path: str, source: str):
    """``package.module:Class`` -> the class; errors name the spec key and the fix."""
    mod_name, _, attr = path.partition(":")
    if not mod_name or not attr:
        raise InvalidInputError(
            f"{source}: key 'class': {path!r} is not 'package.module:Class'. "
            'Fix: e.g. class = "models.demo.net:DemoCNN"'
        )
    try:
        return getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            f"{source}: key 'class': cannot import {path!r} ({exc}). "
            "Fix: install the package that defines it in Vigil's environment"
        ) from None


class ModuleAdapter(RescoringAdapter):
    """``class`` (built with ``init`` keyword arguments) loaded with ``weights``."""

    def _build(self, device: str):
        import torch

        spec = self.spec
        cls = import_class(spec.module_class, str(spec.path))
        module = cls(**spec.init)
        if spec.weights is None or not spec.weights.is_file():
            raise InvalidInputError(
                f"{spec.path}: key 'weights': file {spec.weights} not found. "
                "Fix: give the path of the .safetensors or .pt file, relative to the spec"
            )
        if spec.weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(spec.weights))
        else:
            state = torch.load(str(spec.weights), map_location="cpu", weights_only=True)
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"{spec.weights}: weights do not fit {spec.module_class} ({str(exc)[:200]})"
            ) from None
        return module.to(device)
