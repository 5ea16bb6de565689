"""monitors.performance against scikit-learn / statsmodels on the same synthetic case frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from monitors_synth import synth_frame
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, roc_auc_score
from statsmodels.stats.proportion import proportion_confint, proportions_ztest
from statsmodels.stats.rates import confint_poisson

from monitors.frame import empty_case_frame
from monitors.performance import (
    Baseline,
    performance_summary,
    performance_trend,
    threshold_analysis,
)
from monitors.results import Status

MODEL = "neurovue-ich"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synth_frame(6000, seed=3)


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"].notna()]


def test_summary_matches_sklearn_and_statsmodels(frame: pd.DataFrame) -> None:
    s = performance_summary(frame, model=MODEL)
    lab = _labelled(frame)
    y = lab["label"].astype(int).to_numpy()
    pred = lab["ai_call"].astype(bool).to_numpy()
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    expect = {
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
        "flag_rate": (int(frame["ai_call"].sum()), len(frame)),
    }
    for metric, (k, n) in expect.items():
        est = s.metrics[metric]
        assert est.status is Status.OK and est.n == n and est.numerator == k, metric
        assert est.value == pytest.approx(k / n)
        assert (est.ci_low, est.ci_high) == pytest.approx(
            proportion_confint(k, n, method="wilson"), abs=1e-12
        )
    fps = s.metrics["fp_per_study"]
    assert fps.n == len(lab) and fps.numerator == fp
    assert (fps.ci_low, fps.ci_high) == pytest.approx(confint_poisson(fp, len(lab), "exact-c"))
    auc = s.metrics["auc"]
    assert auc.value == pytest.approx(roc_auc_score(y, lab["score"]), rel=1e-12)
    assert auc.ci_low < auc.value < auc.ci_high
    pending = int((frame["label_state"] == "pending").sum())
    assert s.n_pending == pending and s.n_results == len(frame)
    assert s.label_coverage.numerator == len(frame) - pending
    assert s.n_labelled == len(lab) and s.n_positive == int(y.sum())
    assert s.versions == ["1.0"]
    json.dumps(s.to_dict())  # JSON-ready


def test_other_models_rows_are_ignored(frame: pd.DataFrame) -> None:
    other = synth_frame(500, seed=9, model="lungsight-nodule")
    both = pd.concat([frame, other], ignore_index=True)
    for col in ("model", "site", "label_state"):
        both[col] = both[col].astype("category")
    a = performance_summary(frame, model=MODEL)
    b = performance_summary(both, model=MODEL)
    assert a.metrics == b.metrics


def test_empty_and_small_frames_give_explicit_states() -> None:
    s = performance_summary(empty_case_frame(), model=MODEL)
    assert all(e.status is Status.UNDEFINED for e in s.metrics.values())
    assert s.n_results == 0 and s.period_start is None
    small = performance_summary(synth_frame(60, seed=1), model=MODEL)
    assert small.metrics["sensitivity"].status is Status.INSUFFICIENT_DATA
    assert small.metrics["sensitivity"].value is None
    assert small.metrics["auc"].status is Status.INSUFFICIENT_DATA
    d = small.to_dict()
    assert d["metrics"]["sensitivity"]["status"] == "insufficient_data"


def test_baseline_comparison_matches_statsmodels(frame: pd.DataFrame) -> None:
    base = Baseline(sensitivity=0.95, specificity=0.80, auc=0.99, n_positive=400, n_negative=600)
    s = performance_summary(frame, model=MODEL, baseline=base)
    by = {c.metric: c for c in s.vs_baseline}
    sens = s.metrics["sensitivity"]
    _, p = proportions_ztest([sens.numerator, 380], [sens.n, 400])
    assert by["sensitivity"].p_value == pytest.approx(p, rel=1e-9)
    assert by["sensitivity"].difference == pytest.approx(sens.value - 0.95)
    assert by["sensitivity"].below_baseline is (by["sensitivity"].diff_ci_high < 0)
    # AUC: production DeLong variance + the baseline's Hanley & McNeil (1982) variance
    lab = _labelled(frame)
    r_auc = s.metrics["auc"].value
    q1, q2 = 0.99 / (2 - 0.99), 2 * 0.99**2 / (1 + 0.99)
    hm = (0.99 * 0.01 + 399 * (q1 - 0.99**2) + 599 * (q2 - 0.99**2)) / (400 * 600)
    half = (s.metrics["auc"].ci_high - s.metrics["auc"].ci_low) / 2
    var_prod = (half / norm.ppf(0.975)) ** 2
    z = (r_auc - 0.99) / np.sqrt(var_prod + hm)
    assert by["auc"].p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-6)
    assert by["auc"].below_baseline and len(lab) == by["auc"].n
    # baseline without class sizes: fixed number, exact binomial test
    fixed = performance_summary(frame, model=MODEL, baseline=Baseline(sensitivity=0.95))
    c = fixed.vs_baseline[0]
    assert c.baseline_n is None and "binomial" in c.method
    from scipy.stats import binomtest

    assert c.p_value == pytest.approx(binomtest(sens.numerator, sens.n, 0.95).pvalue)


def test_baseline_with_only_a_total_n_estimates_class_sizes(frame: pd.DataFrame) -> None:
    """A model card often gives only n: the baseline's positives are taken as n x the
    production prevalence (said in the method), and the test is statsmodels' z-test on that."""
    s = performance_summary(frame, model=MODEL, baseline=Baseline(sensitivity=0.95, n=2000))
    sens, spec = s.metrics["sensitivity"], s.metrics["specificity"]
    n_pos = round(2000 * sens.n / (sens.n + spec.n))
    c = s.vs_baseline[0]
    assert c.baseline_n == n_pos and "estimated" in c.method
    _, p = proportions_ztest([sens.numerator, round(0.95 * n_pos)], [sens.n, n_pos])
    assert c.p_value == pytest.approx(p, rel=1e-9)


def test_paired_delong_against_rescored_scores(frame: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    noisy = frame["score"].to_numpy() + rng.normal(0, 0.3, len(frame))
    rescored = pd.DataFrame({"study_id": frame["study_id"], "rescore_score": noisy})
    s = performance_summary(frame, model=MODEL, rescored=rescored)
    assert s.paired is not None and s.paired.status is Status.OK
    lab = _labelled(frame)
    y = lab["label"].astype(int)
    assert s.paired.auc_a == pytest.approx(roc_auc_score(y, lab["score"]))
    assert s.paired.auc_b == pytest.approx(roc_auc_score(y, noisy[lab.index]))
    assert s.paired.difference > 0 and s.paired.p_value < 0.001


def test_monthly_trend_counts_add_up_and_match_sklearn(frame: pd.DataFrame) -> None:
    trend = performance_trend(frame, model=MODEL, freq="M")
    assert [p.period for p in trend] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert sum(p.n_results for p in trend) == len(frame)
    month = frame[frame["exam_at"].dt.month == 3]
    lab = _labelled(month)
    p3 = trend[2]
    assert p3.start == pd.Timestamp("2026-03-01", tz="UTC")
    assert p3.end == pd.Timestamp("2026-04-01", tz="UTC")
    assert p3.metrics["auc"].value == pytest.approx(
        roc_auc_score(lab["label"].astype(int), lab["score"]), rel=1e-12
    )
    sens = p3.metrics["sensitivity"]
    pos = lab[lab["label"] == 1]
    assert sens.n == len(pos) and sens.numerator == int(pos["ai_call"].sum())


def test_weekly_and_rolling_trend(frame: pd.DataFrame) -> None:
    weeks = performance_trend(frame, model=MODEL, freq="W")
    assert weeks[0].period == "2026-W01" and weeks[0].start == pd.Timestamp("2025-12-29", tz="UTC")
    assert sum(w.n_results for w in weeks) == len(frame)
    roll = performance_trend(frame, model=MODEL, freq="W", rolling=4)
    assert len(roll) == len(weeks) - 3 and roll[0].kind == "rolling"
    w = roll[5]
    sub = frame[(frame["exam_at"] >= w.start) & (frame["exam_at"] < w.end)]
    lab = _labelled(sub)
    assert w.n_results == len(sub)
    assert w.metrics["auc"].value == pytest.approx(
        roc_auc_score(lab["label"].astype(int), lab["score"]), rel=1e-12
    )
    assert w.metrics["specificity"].n == int((lab["label"] == 0).sum())


def test_trend_shows_empty_periods_as_undefined() -> None:
    df = synth_frame(400, seed=2, days=90)
    df = df[df["exam_at"].dt.month != 2]  # no cases in February
    trend = performance_trend(df, model=MODEL, freq="M")
    assert [p.period for p in trend] == ["2026-01", "2026-02", "2026-03"]
    assert trend[1].n_results == 0
    assert all(e.status is Status.UNDEFINED for e in trend[1].metrics.values())


def test_threshold_analysis_matches_sklearn(frame: pd.DataFrame) -> None:
    pts = threshold_analysis(frame, model=MODEL, thresholds=[0.3, 0.5, 0.7])
    assert [p.threshold for p in pts] == [0.3, 0.5, 0.7]
    assert [p.is_operating for p in pts] == [False, True, False]
    lab = _labelled(frame)
    y = lab["label"].astype(int)
    for p in pts:
        tn, fp, fn, tp = confusion_matrix(y, lab["score"] >= p.threshold).ravel()
        assert (p.tp, p.fp, p.tn, p.fn) == (tp, fp, tn, fn)
        assert (p.sensitivity.ci_low, p.sensitivity.ci_high) == pytest.approx(
            proportion_confint(tp, tp + fn, method="wilson")
        )
        assert p.fp_per_study.value == pytest.approx(fp / len(lab))
    # the trade-off: a higher threshold never raises sensitivity or false positives
    sens = [p.sensitivity.value for p in pts]
    fps = [p.fp_per_study.value for p in pts]
    assert sens == sorted(sens, reverse=True) and fps == sorted(fps, reverse=True)
    # the operating threshold reproduces the production calls
    summary = performance_summary(frame, model=MODEL)
    assert pts[1].sensitivity == summary.metrics["sensitivity"]
