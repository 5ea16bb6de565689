"""How closely the demo model reproduces the simulated vendor's scores on a simulator run.

    .venv/bin/python -m models.demo.agreement --truth sim/truth.parquet [--model neurovue-ich]

Renders every study of ``--model`` in the run's ``truth.parquet`` the way ``vigil rescore`` sees
it (same renderer, same 12-bit DICOM quantisation, same preprocessing spec), scores it with the
shipped weights and compares with the score the vendor sent (``ai_score``). Prints the figures
the README's model card quotes: studies, mean / 99th percentile / largest |difference|, cases
beyond the spec's ``case_abs``, and call flips at the vendor's operating threshold. No store and
no feeds needed: the check of the weights themselves, independent of sampling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def agreement(truth: Path, model: str, batch_size: int = 256) -> dict[str, float]:
    import pandas as pd
    import torch

    from models.adapters import load_spec, make_adapter
    from models.demo import spec_path
    from models.truth import column, studies_from_truth
    from vigil.simulate import catalog
    from vigil.simulate.dicom import quantise_like_dicom, render_hu

    df = pd.read_parquet(truth)
    df = df[df[column(df, "model")].astype(str) == model].reset_index(drop=True)
    spec = load_spec(spec_path(model))
    adapter = make_adapter(spec).load("cpu")
    threshold = next(m for m in catalog.MODELS if m.name == model).threshold
    studies = studies_from_truth(df, model)
    scores = []
    for i in range(0, len(studies), batch_size):
        x = torch.stack(
            [
                spec.preprocess.apply(quantise_like_dicom(render_hu(s)))
                for s in studies[i : i + batch_size]
            ]
        )
        scores.append(adapter.score_batch(x).numpy())
    rescored = np.concatenate(scores) if scores else np.array([])
    vendor = df[column(df, "score")].to_numpy(dtype=float)
    diff = np.abs(rescored - vendor)
    flips = (rescored >= threshold) != (vendor >= threshold)
    return {
        "studies": len(diff),
        "mean_abs": float(diff.mean()),
        "p99_abs": float(np.quantile(diff, 0.99)),
        "max_abs": float(diff.max()),
        "case_abs": spec.tolerance_case_abs,
        "beyond_case_abs": int((diff > spec.tolerance_case_abs).sum()),
        "flips": int(flips.sum()),
        "flip_rate": float(flips.mean()),
        "threshold": threshold,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", type=Path, required=True, help="a simulator run's truth.parquet")
    ap.add_argument("--model", action="append", help="default: both demo models")
    args = ap.parse_args()
    for model in args.model or ["neurovue-ich", "lungsight-nodule"]:
        a = agreement(args.truth, model)
        print(
            f"{model}: {a['studies']} studies, mean |diff| {a['mean_abs']:.4f}, "
            f"p99 {a['p99_abs']:.4f}, max {a['max_abs']:.4f}, {a['beyond_case_abs']} beyond "
            f"case_abs {a['case_abs']}, call flips {a['flips']} "
            f"({a['flip_rate']:.1%}) at threshold {a['threshold']}"
        )


if __name__ == "__main__":
    main()
