"""Re-scoring agreement: production vs re-run scores, checked against scipy / statsmodels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from monitors.rescoring import rescoring_agreement
from monitors.results import Status


def _frame(n: int, noise: float, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.3).astype(int)
    prod = 1 / (1 + np.exp(-(rng.normal(size=n) + 2 * label - 1)))
    rerun = np.clip(prod + shift + rng.normal(0, noise, n), 0, 1)
    return pd.DataFrame(
        {
            "study_id": np.arange(n),
            "production_score": prod,
            "rescore_score": rerun,
            "label": pd.array(label, dtype="Int8"),
            "threshold": 0.5,
        }
    )


def test_identical_rerun_agrees() -> None:
    df = _frame(500, 0.0)
    r = rescoring_agreement(df, tolerance=0.02)
    assert not r.disagrees and r.reasons == []
    assert r.mean_abs_diff.value == 0 and r.call_flips.numerator == 0
    assert r.status is Status.OK and r.paired_auc is not None
    assert r.paired_auc.difference == 0


def test_numbers_match_scipy_and_statsmodels() -> None:
    df = _frame(800, 0.03, seed=1)
    r = rescoring_agreement(df, tolerance=0.05)
    d = df["rescore_score"] - df["production_score"]
    ad = d.abs()
    t = sps.t.ppf(0.975, len(d) - 1)
    assert r.mean_abs_diff.value == pytest.approx(ad.mean())
    assert r.mean_abs_diff.ci_high == pytest.approx(ad.mean() + t * ad.std(ddof=1) / np.sqrt(800))
    assert r.mean_diff.ci_low == pytest.approx(d.mean() - t * d.std(ddof=1) / np.sqrt(800))
    beyond = int((ad > 0.05).sum())
    assert r.share_beyond_tolerance.numerator == beyond
    assert (r.share_beyond_tolerance.ci_low, r.share_beyond_tolerance.ci_high) == pytest.approx(
        proportion_confint(beyond, 800, method="wilson")
    )
    pa, pb = df["production_score"] >= 0.5, df["rescore_score"] >= 0.5
    assert r.flips_to_positive == int((~pa & pb).sum())
    assert r.flips_to_negative == int((pa & ~pb).sum())
    assert r.call_flips.numerator == int((pa != pb).sum())
    assert r.max_abs_diff == pytest.approx(ad.max())
    y = df["label"].astype(int)
    assert r.paired_auc.auc_a == pytest.approx(roc_auc_score(y, df["production_score"]))
    assert r.paired_auc.auc_b == pytest.approx(roc_auc_score(y, df["rescore_score"]))
    json.loads(json.dumps(r.to_dict()))


def test_silent_model_change_is_flagged() -> None:
    changed = rescoring_agreement(_frame(300, 0.0, shift=0.08), tolerance=0.02)
    assert changed.disagrees and len(changed.reasons) == 2
    assert changed.mean_diff.ci_low > 0.07


def test_a_few_cases_far_off_are_flagged_even_below_min_n() -> None:
    df = _frame(10, 0.0)
    df["rescore_score"] = df["rescore_score"] + 0.3
    r = rescoring_agreement(df, tolerance=0.02, min_n=30)
    assert r.status is Status.INSUFFICIENT_DATA and r.mean_abs_diff.value is None
    assert r.disagrees  # 10 of 10 beyond tolerance: Wilson lower bound 0.72 > 0.01


def test_tiny_numeric_noise_is_not_a_change() -> None:
    r = rescoring_agreement(_frame(2000, 1e-5, seed=2), tolerance=0.02)
    assert not r.disagrees
    assert r.share_beyond_tolerance.numerator == 0


def test_errors_and_missing_scores_are_left_out() -> None:
    df = _frame(100, 0.0)
    df["error"] = None
    df.loc[:9, "error"] = "image not found"
    df.loc[10:14, "rescore_score"] = np.nan
    r = rescoring_agreement(df)
    assert r.n == 85


def test_empty_frame_and_missing_columns() -> None:
    empty = rescoring_agreement(_frame(0, 0.0))
    assert empty.status is Status.UNDEFINED and not empty.disagrees
    assert empty.max_abs_diff is None
    with pytest.raises(ValueError):
        rescoring_agreement(pd.DataFrame({"production_score": [0.1]}))


def test_declared_mean_and_flip_limits_apply_separately() -> None:
    """A spec declares a per-case limit, a mean limit and a flip-rate limit: a re-run whose
    mean difference is 0.06 passes a lenient per-case limit of 0.10 alone, but fails a declared
    mean limit of 0.03; flips beyond the declared rate are caught only when that rule is on."""
    df = _frame(1500, 0.0, seed=3, shift=0.06)
    lenient = rescoring_agreement(df, tolerance=0.10, max_share_beyond=0.99)
    assert not lenient.disagrees
    strict_mean = rescoring_agreement(df, tolerance=0.10, max_share_beyond=0.99,
                                      mean_tolerance=0.03)  # fmt: skip
    assert strict_mean.disagrees
    assert any("mean absolute difference" in r for r in strict_mean.reasons)
    flips = strict_mean.call_flips
    low, _ = proportion_confint(flips.numerator, flips.n, alpha=0.05, method="wilson")
    assert flips.ci_low == pytest.approx(low)
    with_flip_rule = rescoring_agreement(
        df, tolerance=0.10, max_share_beyond=0.99, max_flip_rate=low / 2
    )
    assert any("call flips" in r for r in with_flip_rule.reasons)
    assert not any(
        "call flips" in r
        for r in rescoring_agreement(
            df, tolerance=0.10, max_share_beyond=0.99, max_flip_rate=min(1.0, low * 2 + 0.01)
        ).reasons
    )
