"""Adapter for a TorchScript file (``torch.jit.save``): the vendor-neutral way to ship a model."""

from __future__ import annotations

from vigil.errors import InvalidInputError

from .base import RescoringAdapter


class TorchScriptAdapter(RescoringAdapter):
    """``weights`` is the TorchScript file; no Python class is needed to run it."""

    def _build(self, device: str):
        import warnings

        import torch

        if self.spec.weights is None or not self.spec.weights.is_file():
            raise InvalidInputError(
                f"{self.spec.path}: key 'weights': TorchScript file {self.spec.weights} not found"
            )
        try:
            with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; still runs
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(self.spec.weights), map_location=device)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"{self.spec.weights}: not a TorchScript file ({exc.args[0][:120]}). "
                "Fix: save it with torch.jit.save(torch.jit.script(model), path)"
            ) from None
