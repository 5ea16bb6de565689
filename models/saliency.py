"""Grad-CAM saliency maps (one backward pass per batch) and their PNG rendering.

Grad-CAM weights the chosen layer's activation maps by the spatially averaged gradient of the
logit, keeps the positive part and upsamples it to the input: "where the evidence for this score
sits". Samples in a batch are independent in eval mode, so one backward pass of the summed logits
gives every case's map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _layer(module, dotted: str):
    layer = module
    for part in dotted.split("."):
        layer = layer[int(part)] if part.isdigit() else getattr(layer, part)
    return layer


def grad_cam(module, batch, layer_name: str):
    """(B, H, W) maps in [0, 1] for a batch (B, 1, H, W) on the module's device."""
    import torch
    import torch.nn.functional as F

    layer = _layer(module, layer_name)
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = batch.detach().clone().requires_grad_(True)
            out = module(x)
            out.reshape(out.shape[0], -1)[:, 0].sum().backward()
    finally:
        handle.remove()
    act, grad = store["act"].detach(), store["grad"].detach()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).cpu()


def _colour(cam: np.ndarray) -> np.ndarray:
    """A perceptual-ish heat colour map (black-red-yellow-white) without matplotlib."""
    r = np.clip(cam * 3, 0, 1)
    g = np.clip(cam * 3 - 1, 0, 1)
    b = np.clip(cam * 3 - 2, 0, 1)
    return np.stack([r, g, b], axis=-1)


def save_overlay(image01: np.ndarray, cam: np.ndarray, path: Path, scale: int = 4) -> Path:
    """PNG: the windowed image in grey with the map blended where it is strong."""
    from PIL import Image

    grey = np.repeat(np.clip(image01, 0, 1)[..., None], 3, axis=-1)
    alpha = (np.clip(cam, 0, 1) ** 1.5)[..., None] * 0.6
    rgb = (grey * (1 - alpha) + _colour(cam) * alpha) * 255
    img = Image.fromarray(rgb.astype(np.uint8), "RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
