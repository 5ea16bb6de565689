"""Train the demo re-scoring CNN for one simulated model; writes ``<model>.safetensors``.

    .venv/bin/python -m models.demo.train --model neurovue-ich [--truth RUN/truth.parquet]

Images are rendered by ``vigil.simulate.dicom`` exactly as the DICOM files a re-scoring job
reads (same renderer, same 12-bit HU quantisation, same preprocessing spec), and the target is
the vendor's logit. Without ``--truth`` the latents are drawn over the whole range the simulator
uses (evidence uniform over the clip range, every scanner, contrast factors 0.7-1.3), which teaches
the network to read any study; with ``--truth`` the simulator's own studies are used. Runs on CPU
in a few minutes (2 cores); fixed seeds make it repeatable.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.adapters.base import load_spec
from models.demo import HERE
from models.demo.net import DemoCNN
from vigil.simulate.dicom import EVIDENCE_CLIP, StudyImage, quantise_like_dicom, render_hu

BODY_PART = {"neurovue-ich": "HEAD", "lungsight-nodule": "CHEST"}
SCANNERS = [
    ("GE MEDICAL SYSTEMS", "Revolution CT"),
    ("SIEMENS", "SOMATOM Definition AS"),
    ("Philips", "Ingenuity CT"),
    ("TOSHIBA", "Aquilion ONE"),
    ("Canon Medical Systems", "Aquilion Prime"),
]


def synthetic_studies(n: int, body_part: str, seed: int) -> list[StudyImage]:
    """Latents over the simulator's whole range (the network must read any study)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        man, mod = SCANNERS[rng.integers(len(SCANNERS))]
        out.append(
            StudyImage(
                study_uid=f"2.25.{seed}{i}",
                accession=str(i),
                body_part=body_part,
                evidence=float(rng.uniform(-EVIDENCE_CLIP - 1, EVIDENCE_CLIP + 1)),
                seed=int(rng.integers(0, 2**31)),
                manufacturer=man,
                scanner_model=mod,
                contrast_factor=float(rng.uniform(0.7, 1.3)),
            )
        )
    return out


def truth_studies(path: Path, model: str) -> list[StudyImage]:
    import pandas as pd

    from models.truth import studies_from_truth

    return studies_from_truth(pd.read_parquet(path), model)


def tensors(studies: list[StudyImage], spec) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([spec.preprocess.apply(quantise_like_dicom(render_hu(s))) for s in studies])
    y = torch.tensor(
        [min(max(s.evidence, -EVIDENCE_CLIP), EVIDENCE_CLIP) for s in studies], dtype=torch.float32
    )
    return x, y


def train(
    model_name: str,
    n_train: int,
    epochs: int,
    seed: int,
    truth: Path | None,
    out: Path | None = None,
) -> dict:
    spec = load_spec(HERE / f"{model_name}.toml")
    torch.manual_seed(seed)
    body = BODY_PART[model_name]
    studies = truth_studies(truth, model_name) if truth else synthetic_studies(n_train, body, seed)
    val = synthetic_studies(max(500, n_train // 8), body, seed + 1)
    t0 = time.perf_counter()
    x, y = tensors(studies, spec)
    xv, yv = tensors(val, spec)
    net = DemoCNN(**spec.init)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.SmoothL1Loss()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            xb = x[idx]
            if torch.rand(()) < 0.5:  # anatomy is left-right symmetric; lesions are anywhere
                xb = xb.flip(-1)
            loss = loss_fn(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            pv = torch.sigmoid(net(xv))
        mae = (pv - torch.sigmoid(yv)).abs()
        print(f"epoch {epoch + 1}/{epochs}: val mean |dp| {mae.mean():.4f}, max {mae.max():.4f}")
    from safetensors.torch import save_file

    out = out or spec.weights
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out))
    report = {
        "model": model_name,
        "train_images": len(x),
        "epochs": epochs,
        "seed": seed,
        "val_mean_abs_prob": round(float(mae.mean()), 5),
        "val_p99_abs_prob": round(float(mae.quantile(0.99)), 5),
        "val_max_abs_prob": round(float(mae.max()), 5),
        "seconds": round(time.perf_counter() - t0, 1),
        "weights_bytes": out.stat().st_size,
        "source": str(truth) if truth else "synthetic latents",
    }
    out.with_suffix(".train.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(BODY_PART), required=True)
    ap.add_argument("--n", type=int, default=4000, help="training images (synthetic latents)")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--truth", type=Path, default=None, help="a simulator run's truth.parquet")
    ap.add_argument(
        "--out", type=Path, default=None, help="weights file (default: the shipped one)"
    )
    args = ap.parse_args()
    report = train(args.model, args.n, args.epochs, args.seed, args.truth, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
