"""The re-scoring adapter interface and the preprocessing spec every adapter declares.

An adapter turns a model file into something the re-scoring job can run: ``load`` it on a device,
``preprocess`` one image (HU array -> tensor; runs in DataLoader workers, so it must be picklable
and cheap), ``score_batch`` (tensor batch -> probabilities), and identify it (``model_id``,
``version``, ``sha256`` of the weights and spec: the hash stored with every re-scored case, so a
different file is never mistaken for the same model).
"""

from __future__ import annotations

import hashlib
import tomllib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import InvalidInputError


@dataclass(frozen=True)
class PreprocessSpec:
    """CT windowing (HU level/width) -> [0, 1], resize to size x size, then (x - mean) / std."""

    window_level: float
    window_width: float
    size: int = 64
    mean: float = 0.0
    std: float = 1.0

    def apply(self, hu: np.ndarray):
        """One HU image (H, W) -> float32 tensor (1, size, size)."""
        import torch
        import torch.nn.functional as F

        # one affine map and one clip, in place: (clip((hu - lo) / w, 0, 1) - mean) / std
        lo = self.window_level - self.window_width / 2
        scale = 1.0 / (self.window_width * self.std)
        x = np.array(hu, dtype=np.float32, copy=True, order="C")
        x *= scale
        x += -lo * scale - self.mean / self.std
        np.clip(x, -self.mean / self.std, (1.0 - self.mean) / self.std, out=x)
        t = torch.from_numpy(x)[None]
        if t.shape[-2:] != (self.size, self.size):
            # resizing commutes with the affine map, and the antialiased bilinear kernel keeps
            # values inside the clipped range
            t = F.interpolate(
                t[None], size=(self.size, self.size), mode="bilinear", antialias=True
            )[0]
        return t


@dataclass(frozen=True)
class AdapterSpec:
    """What a re-scoring spec TOML declares (README section ``models``, "Adapters")."""

    adapter: str  # entry-point name in group vigil.rescoring_adapters
    path: Path  # the spec file (relative paths resolve against its folder)
    preprocess: PreprocessSpec
    version: str = ""
    weights: Path | None = None
    module_class: str = ""  # "package.module:Class" for the module adapter
    init: dict[str, Any] = field(default_factory=dict)
    output: str = "logit"  # logit (sigmoid applied) or probability
    saliency_layer: str = ""  # dotted module name Grad-CAM hooks
    tolerance_mean_abs: float = 0.03  # mean |re-run - production| allowed
    tolerance_case_abs: float = 0.10  # a single case beyond this counts as a disagreement
    tolerance_flip_rate: float = 0.05  # share of call flips allowed
    raw: dict[str, Any] = field(default_factory=dict)

    def with_preprocess(self, **changes: Any) -> AdapterSpec:
        """A copy with changed preprocessing (tests: a wrong window must be caught)."""
        from dataclasses import replace

        return replace(self, preprocess=replace(self.preprocess, **changes))

    def fingerprint(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "preprocess": asdict(self.preprocess),
            "module_class": self.module_class,
            "init": self.init,
            "output": self.output,
        }


def _need(table: dict[str, Any], key: str, src: Path, kind: type, fix: str) -> Any:
    if key not in table:
        raise InvalidInputError(f"{src}: key '{key}': missing. Fix: {fix}")
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInputError(
            f"{src}: key '{key}': expected {kind.__name__}, got {value!r}. Fix: {fix}"
        )
    return value


def load_spec(path: Path) -> AdapterSpec:
    """Read a re-scoring spec TOML (a ``[rescoring]`` table, or the same keys at top level)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such re-scoring spec file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("rescoring", data)
    pre = table.get("preprocess")
    if not isinstance(pre, dict):
        raise InvalidInputError(
            f"{path}: key 'preprocess': missing table. Fix: add [rescoring.preprocess] with "
            "window_level, window_width, size, mean, std"
        )
    fix_pre = "CT window in HU, e.g. window_level = 40, window_width = 80"
    prep = PreprocessSpec(
        window_level=_need(pre, "window_level", path, float, fix_pre),
        window_width=_need(pre, "window_width", path, float, fix_pre),
        size=int(pre.get("size", 64)),
        mean=float(pre.get("mean", 0.0)),
        std=float(pre.get("std", 1.0)),
    )
    if prep.window_width <= 0 or prep.std <= 0 or prep.size < 8:
        raise InvalidInputError(
            f"{path}: key 'preprocess': window_width and std must be > 0 and size >= 8"
        )
    weights = table.get("weights")
    tol = table.get("tolerance", {})
    return AdapterSpec(
        adapter=_need(table, "adapter", path, str, 'adapter = "module" or "torchscript"'),
        path=path.resolve(),
        preprocess=prep,
        version=str(table.get("version", "")),
        weights=(path.parent / weights).resolve() if weights else None,
        module_class=str(table.get("class", "")),
        init=dict(table.get("init", {})),
        output=str(table.get("output", "logit")),
        saliency_layer=str(table.get("saliency_layer", "")),
        tolerance_mean_abs=float(tol.get("mean_abs", 0.03)),
        tolerance_case_abs=float(tol.get("case_abs", 0.10)),
        tolerance_flip_rate=float(tol.get("flip_rate", 0.05)),
        raw=table,
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class RescoringAdapter(ABC):
    """Base class of every adapter; subclasses implement ``_build`` (return the nn.Module)."""

    def __init__(self, spec: AdapterSpec) -> None:
        self.spec = spec
        self.module = None
        self.device = "cpu"

    @abstractmethod
    def _build(self, device: str):
        """Load the model file and return a torch module in eval mode on ``device``."""

    def load(self, device: str = "cpu") -> RescoringAdapter:
        self.device = device
        self.module = self._build(device)
        self.module.eval()
        return self

    def preprocess(self, hu: np.ndarray):
        return self.spec.preprocess.apply(hu)

    def logits(self, batch):
        """Raw output (B,) of the module: logits or probabilities as the spec says."""
        if self.module is None:
            raise RuntimeError("call load() first")
        out = self.module(batch)
        return out.reshape(out.shape[0], -1)[:, 0]

    def to_probability(self, out):
        import torch

        return torch.sigmoid(out) if self.spec.output == "logit" else out

    def score_batch(self, batch):
        """Probabilities (B,) for a preprocessed batch (B, 1, H, W) already on the device."""
        import torch

        with torch.inference_mode():
            return self.to_probability(self.logits(batch)).float()

    @property
    def model_id(self) -> str:
        return f"{self.spec.adapter}:{self.spec.path.stem}"

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def sha256(self) -> str:
        """Hash of the weights file and the spec that shapes the inputs (window, size, ...)."""
        h = hashlib.sha256()
        if self.spec.weights is not None:
            h.update(file_sha256(self.spec.weights).encode())
        h.update(repr(sorted(self.spec.fingerprint().items())).encode())
        return h.hexdigest()
