"""Time the statistical monitors on a synthetic 1M-row case frame, with baselines in the same run.

    .venv/bin/python bench/bench_monitors_stats.py [--rows 1000000] [--repeat 3]

Figures (best of --repeat, seconds): performance_summary (all metrics with CIs, DeLong AUC),
performance_trend monthly / weekly / 4-week rolling, threshold_analysis over 19 thresholds,
fairness_scan over the 7 subgroup attributes (sensitivity, specificity, PPV, AUC each, group vs
rest, BH) and with two intersections. Baselines on the same data: scikit-learn roc_auc_score
(AUC alone, no variance), statsmodels proportion_confint (one Wilson CI), and the obvious
pandas way of a subgroup table (groupby + roc_auc_score per group and per complement).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from monitors.fairness import fairness_scan  # noqa: E402
from monitors.frame import SUBGROUP_ATTRIBUTES  # noqa: E402
from monitors.performance import (  # noqa: E402
    performance_summary,
    performance_trend,
    threshold_analysis,
)

MODEL = "neurovue-ich"


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) time of ``repeat`` runs. On a shared, busy
    machine CPU time is the steadier figure; wall time is what a user waits."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from monitors_synth import synth_frame

    t = time.perf_counter()
    df = synth_frame(args.rows, seed=1, weak_group=("site", "EMC"))
    print(f"synthetic frame: {len(df):,} rows in {time.perf_counter() - t:.1f}s")
    print(f"machine: {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")

    ours = {
        "performance_summary": lambda: performance_summary(df, model=MODEL),
        "performance_trend M": lambda: performance_trend(df, model=MODEL, freq="M"),
        "performance_trend W": lambda: performance_trend(df, model=MODEL, freq="W"),
        "performance_trend 4W rolling": lambda: performance_trend(
            df, model=MODEL, freq="W", rolling=4
        ),
        "threshold_analysis (19 thresholds)": lambda: threshold_analysis(
            df, model=MODEL, thresholds=np.linspace(0.05, 0.95, 19)
        ),
        "fairness_scan (7 attributes)": lambda: fairness_scan(df, model=MODEL),
        "fairness_scan + 2 intersections": lambda: fairness_scan(
            df, model=MODEL, intersections=[("sex", "age_band"), ("site", "patient_class")]
        ),
    }
    results = {name: best(fn, args.repeat) for name, fn in ours.items()}
    core = [
        "performance_summary",
        "performance_trend M",
        "performance_trend W",
        "performance_trend 4W rolling",
        "fairness_scan (7 attributes)",
    ]
    print(f"\nours (best of {args.repeat}): wall s, cpu s")
    for name, (wall, cpu) in results.items():
        print(f"  {name:<40} {wall:7.3f} {cpu:7.3f}")
    wall = sum(results[c][0] for c in core)
    cpu = sum(results[c][1] for c in core)
    print(f"  {'summary + M/W/rolling trends + fairness':<40} {wall:7.3f} {cpu:7.3f}")

    # --- baselines on the same data --------------------------------------------------------
    from sklearn.metrics import roc_auc_score
    from statsmodels.stats.proportion import proportion_confint

    lab = df[df["label"].notna()]
    y = lab["label"].astype(int).to_numpy()
    s = lab["score"].to_numpy()
    pos = lab[lab["label"] == 1]
    k, n = int(pos["ai_call"].sum()), len(pos)

    def pandas_subgroups() -> None:
        for attr in SUBGROUP_ATTRIBUTES:
            for _, g in lab.groupby(attr, observed=True):
                rest = lab.drop(g.index)
                for part in (g, rest):
                    yy = part["label"].astype(int)
                    if yy.nunique() == 2:
                        roc_auc_score(yy, part["score"])
                    p = part[part["label"] == 1]
                    proportion_confint(int(p["ai_call"].sum()), len(p), method="wilson")

    base = {
        "sklearn roc_auc_score (AUC only)": lambda: roc_auc_score(y, s),
        "statsmodels proportion_confint (1 CI)": lambda: proportion_confint(k, n, method="wilson"),
        "pandas groupby + sklearn per group/rest": pandas_subgroups,
    }
    print(f"\nbaselines (best of {args.repeat}): wall s, cpu s")
    for name, fn in base.items():
        wall, cpu = best(fn, args.repeat)
        print(f"  {name:<40} {wall:7.3f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
