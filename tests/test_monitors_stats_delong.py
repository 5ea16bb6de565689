"""AUC and DeLong variance of monitors.stats against scikit-learn, a direct O(m*n)
implementation of DeLong et al. (1988), and the published Hanley & McNeil (1982) example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from monitors.results import Status
from monitors.stats import (
    auc_estimate,
    delong_auc,
    grouped_delong,
    hanley_mcneil_variance,
    paired_delong,
)


def naive_delong(y: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong, DeLong & Clarke-Pearson (1988), written out literally: psi(X, Y) = 1 if Y < X,
    1/2 if equal; V10 = row means, V01 = column means; S = S10/m + S01/n. O(m*n)."""
    aucs, v10s, v01s = [], [], []
    for s in scores:
        x, yy = s[y == 1], s[y == 0]
        psi = (x[:, None] > yy[None, :]) + 0.5 * (x[:, None] == yy[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = len(v10s[0]), len(v01s[0])
    cov = np.cov(np.vstack(v10s), ddof=1) / m + np.cov(np.vstack(v01s), ddof=1) / n
    return np.array(aucs), np.atleast_2d(cov)


def hanley_mcneil_1982() -> tuple[np.ndarray, np.ndarray]:
    """Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT images rated on a 5-point scale
    (1 definitely normal ... 5 definitely abnormal); 58 normal and 51 abnormal patients."""
    normal = [33, 6, 6, 11, 2]
    abnormal = [3, 2, 2, 11, 33]
    ratings = np.concatenate(
        [np.repeat(np.arange(1, 6), normal), np.repeat(np.arange(1, 6), abnormal)]
    ).astype(float)
    labels = np.r_[np.zeros(58), np.ones(51)]
    return labels, ratings


def test_published_hanley_mcneil_example() -> None:
    """The paper reports A = 0.893 with SE 0.032 for these ratings. Our AUC is the same
    Wilcoxon area; the paper's SE uses its exponential approximation, which our
    hanley_mcneil_variance reproduces, and the DeLong SE on the same data lies close to it
    (both estimate the same sampling variance)."""
    y, r = hanley_mcneil_1982()
    res = delong_auc(y, r)
    assert round(res.auc, 3) == 0.893
    assert (res.n_pos, res.n_neg) == (51, 58)
    assert math.sqrt(hanley_mcneil_variance(res.auc, 51, 58)) == pytest.approx(0.032, abs=5e-4)
    assert math.sqrt(res.variance) == pytest.approx(0.032, abs=0.003)
    _, cov = naive_delong(y, r)
    assert res.variance == pytest.approx(cov[0, 0], rel=1e-12)
    lo, hi = res.ci
    z = sps.norm.ppf(0.975)
    assert lo == pytest.approx(res.auc - z * math.sqrt(cov[0, 0]), rel=1e-12)
    assert hi == pytest.approx(res.auc + z * math.sqrt(cov[0, 0]), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_equals_naive_and_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.3).astype(int)
    s = np.round(rng.normal(size=400) + 1.2 * y, 1)  # rounding makes many ties
    res = delong_auc(y, s)
    auc, cov = naive_delong(y, s)
    assert res.auc == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert res.auc == pytest.approx(auc[0], rel=1e-12)
    assert res.variance == pytest.approx(cov[0, 0], rel=1e-10)


def test_paired_delong_equals_naive_covariance() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.4).astype(int)
    a = rng.normal(size=300) + 1.0 * y
    b = np.round(a + rng.normal(scale=0.8, size=300), 1)
    res = paired_delong(y, a, b)
    aucs, cov = naive_delong(y, a, b)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert res.auc_a == pytest.approx(aucs[0]) and res.auc_b == pytest.approx(aucs[1])
    assert res.difference == pytest.approx(aucs[0] - aucs[1])
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    assert res.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    half = sps.norm.ppf(0.975) * math.sqrt(var)
    assert res.ci_low == pytest.approx(res.difference - half, rel=1e-9)
    assert res.status is Status.OK


def test_paired_delong_identical_scores_show_no_difference() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.5).astype(int)
    s = rng.random(200)
    res = paired_delong(y, s, s)
    assert res.difference == 0 and res.p_value == 1.0


def test_paired_delong_detects_a_worse_score() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(2000) < 0.3).astype(int)
    good = rng.normal(size=2000) + 2.0 * y
    bad = good + rng.normal(scale=2.0, size=2000)
    res = paired_delong(y, good, bad)
    assert res.difference > 0 and res.p_value < 1e-6 and res.ci_low > 0


def test_grouped_delong_equals_per_group() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.random(n) < 0.25
    s = np.round(rng.normal(size=n) + y * rng.uniform(0.5, 2), 2)
    g = rng.integers(0, 4, n)
    g[:5] = -1  # ignored rows
    auc, var, npos, nneg = grouped_delong(y, s, g, 5)  # group 4 is empty
    for k in range(4):
        r = delong_auc(y[g == k], s[g == k])
        assert auc[k] == pytest.approx(roc_auc_score(y[g == k], s[g == k]), rel=1e-12)
        assert var[k] == pytest.approx(r.variance, rel=1e-9)
        assert (npos[k], nneg[k]) == (r.n_pos, r.n_neg)
    assert math.isnan(auc[4]) and npos[4] == 0


def test_auc_estimate_states() -> None:
    y = np.r_[np.ones(5), np.zeros(100)]
    s = np.linspace(0, 1, 105)
    assert auc_estimate(np.zeros(10), s[:10], min_pos=20, min_neg=20).status is Status.UNDEFINED
    small = auc_estimate(y, s, min_pos=20, min_neg=20)
    assert small.status is Status.INSUFFICIENT_DATA and small.value is None and small.n == 105
    ok = auc_estimate(y, s, min_pos=5, min_neg=20)
    assert ok.status is Status.OK and ok.method == "delong"


def test_delong_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        delong_auc([1, 0, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        delong_auc([1, 0], [0.1, math.nan])
    with pytest.raises(ValueError):
        delong_auc([1, 1], [0.1, 0.2])


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=4, max_size=200).filter(
        lambda d: 2 <= sum(b for b, _ in d) <= len(d) - 2
    )
)
def test_auc_properties(data) -> None:
    y = np.array([b for b, _ in data])
    s = np.array([v for _, v in data], dtype=float)
    res = delong_auc(y, s)
    assert 0.0 <= res.auc <= 1.0
    assert res.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    lo, hi = res.ci
    assert 0.0 <= lo <= res.auc <= hi <= 1.0
    # symmetry: reversing the score mirrors the AUC, variance unchanged
    rev = delong_auc(y, -s)
    assert rev.auc == pytest.approx(1 - res.auc, abs=1e-12)
    assert rev.variance == pytest.approx(res.variance, abs=1e-12)
    # invariance to a monotone transform of the score
    assert delong_auc(y, np.exp(s / 5)).auc == pytest.approx(res.auc, abs=1e-12)
