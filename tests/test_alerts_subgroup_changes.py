"""Subgroup changes (monitors.alerting.widened_gaps) against hand formulas and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from monitors.alerting import widened_gaps


def _frame(rng: np.random.Generator, n: int, drop: float) -> tuple[pd.DataFrame, np.ndarray]:
    period = rng.integers(0, 2, n)  # 0 = reference, 1 = current
    group = rng.choice(["A", "B", "C"], n)
    label = rng.random(n) < 0.3
    sens = np.where((group == "A") & (period == 1), 0.85 - drop, 0.85)
    call = np.where(label, rng.random(n) < sens, rng.random(n) < 0.08)
    df = pd.DataFrame(
        {
            "grp": pd.Categorical(group),
            "label": pd.array(label.astype(int), dtype="Int8"),
            "ai_call": pd.array(call, dtype="boolean"),
        }
    )
    return df, period


def test_difference_in_differences_matches_hand_formula_and_bh() -> None:
    rng = np.random.default_rng(3)
    df, period = _frame(rng, 20_000, drop=0.2)
    rows = widened_gaps(df, reference=period == 0, current=period == 1, attributes=["grp"], q=0.01)
    assert len(rows) == 6  # 3 groups x 2 metrics
    for r in rows:
        lab, succ = (1, 1) if r["metric"] == "sensitivity" else (0, 0)
        y = df["label"].to_numpy(dtype=int)
        c = df["ai_call"].to_numpy(dtype=bool).astype(int)
        g = (df["grp"] == r["group"]).to_numpy()
        den = y == lab
        cells = []
        for mask in (g & (period == 0), g & (period == 1), ~g & (period == 0), ~g & (period == 1)):
            m = den & mask
            cells.append(((c[m] == succ).sum(), m.sum()))
        p = [x / n for x, n in cells]
        did = (p[1] - p[0]) - (p[3] - p[2])
        se = np.sqrt(sum(pi * (1 - pi) / n for pi, (_, n) in zip(p, cells, strict=True)))
        assert r["gap"] == pytest.approx(did, abs=1e-12)
        assert r["p_value"] == pytest.approx(stats.norm.cdf(did / se), rel=1e-9, abs=1e-300)
    _, adjusted, _, _ = multipletests([r["p_value"] for r in rows], method="fdr_bh")
    assert [r["p_adjusted"] for r in rows] == pytest.approx(list(adjusted))
    flagged = [(r["group"], r["metric"]) for r in rows if r["alert"]]
    assert flagged == [("A", "sensitivity")]


def test_a_standing_gap_is_not_a_change() -> None:
    """Group A is worse in both periods by the same amount: nothing to alert."""
    rng = np.random.default_rng(4)
    n = 30_000
    period = rng.integers(0, 2, n)
    group = rng.choice(["A", "B"], n)
    label = rng.random(n) < 0.3
    sens = np.where(group == "A", 0.6, 0.9)
    call = np.where(label, rng.random(n) < sens, rng.random(n) < 0.08)
    df = pd.DataFrame(
        {
            "grp": pd.Categorical(group),
            "label": pd.array(label.astype(int), dtype="Int8"),
            "ai_call": pd.array(call, dtype="boolean"),
        }
    )
    rows = widened_gaps(df, reference=period == 0, current=period == 1, attributes=["grp"])
    assert rows and not any(r["alert"] for r in rows)
