"""Statistics the monitors rely on: confidence intervals, AUC with DeLong variance, and tests.

Why our own code and not a library call per number: the monitors compute thousands of these over
1M-row frames, so everything here is vectorised (numpy) and written to be checked against
statsmodels / scikit-learn / scipy in the tests. Methods, chosen deliberately:

- proportions: Wilson score interval (good coverage near 0 and 1, where sensitivities live;
  Wald is never used, Clopper-Pearson is needlessly wide for monitoring);
- AUC: DeLong et al. (1988) variance computed with the fast midrank algorithm of Sun & Xu (2014)
  (one sort, O(n log n)); its CI is AUC +/- z*SE clipped to [0, 1], as pROC's ``ci.auc``;
- rates (false positives per study): exact Poisson (Garwood) interval from chi-square quantiles;
- many tests: Benjamini-Hochberg step-up FDR control;
- group vs rest: two-proportion z-test (pooled), or Fisher's exact test when an expected cell is
  below 5; CI of the difference by Newcombe's hybrid score method (method 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

from monitors.results import Estimate, PairedAUC, Status, to_jsonable
from vigil.errors import InvalidInputError

__all__ = [
    "DeLongAUC",
    "MonitorInputError",
    "ProportionTest",
    "auc_estimate",
    "auc_vs_reference",
    "benjamini_hochberg",
    "delong_auc",
    "estimate_from_auc",
    "grouped_delong",
    "hanley_mcneil_variance",
    "independent_auc_test",
    "newcombe_diff_ci",
    "paired_delong",
    "proportion",
    "rate_per_study",
    "sorted_auc_var",
    "two_proportion_test",
    "wilson",
    "wilson_arrays",
    "z_crit",
]


class MonitorInputError(InvalidInputError, ValueError):
    """A monitor was given data or options it cannot use (the message says which). Also a
    ValueError, so plain Python callers can catch it as one."""


@lru_cache(maxsize=64)
def z_crit(alpha: float = 0.05) -> float:
    """Two-sided standard-normal critical value (1.95996... for alpha 0.05)."""
    return float(sps.norm.ppf(1.0 - alpha / 2.0))


# --- proportions -----------------------------------------------------------------------------


def wilson_arrays(
    successes: np.ndarray, n: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval; NaN where n == 0 (callers turn that into UNDEFINED)."""
    k = np.asarray(successes, dtype="float64")
    nn = np.asarray(n, dtype="float64")
    z = z_crit(alpha)
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / nn
        denom = 1.0 + z2 / nn
        centre = (p + z2 / (2.0 * nn)) / denom
        half = z * np.sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    # exact ends: the interval always contains 0 when k == 0 and 1 when k == n
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == nn, 1.0, high)
    bad = nn <= 0
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def wilson(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for successes/n. Raises ValueError when n <= 0 or k outside [0, n]."""
    if n <= 0:
        raise MonitorInputError("wilson interval needs n > 0")
    if not 0 <= successes <= n:
        raise MonitorInputError(f"successes {successes} outside [0, {n}]")
    low, high = wilson_arrays(np.array([successes]), np.array([n]), alpha)
    return float(low[0]), float(high[0])


def clopper_pearson(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval from beta quantiles: never below nominal coverage, so
    wider than Wilson; offered where a committee or regulator asks for an exact interval."""
    if n <= 0:
        raise MonitorInputError("clopper-pearson interval needs n > 0")
    if not 0 <= successes <= n:
        raise MonitorInputError(f"successes {successes} outside [0, {n}]")
    low = 0.0 if successes == 0 else float(sps.beta.ppf(alpha / 2, successes, n - successes + 1))
    high = (
        1.0 if successes == n else float(sps.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    )
    return low, high


_INTERVALS = {"wilson": wilson, "clopper-pearson": clopper_pearson}


def proportion(
    metric: str,
    successes: int,
    n: int,
    *,
    min_n: int,
    alpha: float = 0.05,
    method: str = "wilson",
) -> Estimate:
    """A proportion as an Estimate: UNDEFINED when n == 0, INSUFFICIENT_DATA when n < min_n.

    ``method`` is "wilson" (the default everywhere in Vigil) or "clopper-pearson" (exact).
    """
    if method not in _INTERVALS:
        raise MonitorInputError(f"interval method {method!r}: use one of {sorted(_INTERVALS)}")
    successes, n = int(successes), int(n)
    if n == 0:
        return Estimate(metric, None, None, None, 0, Status.UNDEFINED, method, 0, min_n)
    if n < min_n:
        return Estimate(
            metric, None, None, None, n, Status.INSUFFICIENT_DATA, method, successes, min_n
        )
    low, high = _INTERVALS[method](successes, n, alpha=alpha)
    return Estimate(metric, successes / n, low, high, n, Status.OK, method, successes, min_n)


def rate_per_study(
    count: int, n_studies: int, *, min_n: int = 1, alpha: float = 0.05, metric: str = "fp_per_study"
) -> Estimate:
    """Events per study with the exact Poisson (Garwood 1936) CI: chi2 quantiles / (2 n)."""
    count, n_studies = int(count), int(n_studies)
    method = "poisson-exact"
    if n_studies == 0:
        return Estimate(metric, None, None, None, 0, Status.UNDEFINED, method, count, min_n)
    if n_studies < min_n:
        return Estimate(
            metric, None, None, None, n_studies, Status.INSUFFICIENT_DATA, method, count, min_n
        )
    low = 0.0 if count == 0 else float(sps.chi2.ppf(alpha / 2.0, 2 * count)) / 2.0
    high = float(sps.chi2.ppf(1.0 - alpha / 2.0, 2 * count + 2)) / 2.0
    return Estimate(
        metric,
        count / n_studies,
        low / n_studies,
        high / n_studies,
        n_studies,
        Status.OK,
        method,
        count,
        min_n,
    )


class ProportionTest(NamedTuple):
    """Difference p1 - p2 with Newcombe CI and a two-sided p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str  # "two-proportion-z" / "fisher-exact"

    def to_dict(self) -> dict:
        return to_jsonable(self._asdict())


def newcombe_diff_ci(
    x1: int, n1: int, x2: int, n2: int, *, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe (1998) hybrid score CI for p1 - p2 (method 10), built from two Wilson intervals."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, alpha=alpha)
    l2, u2 = wilson(x2, n2, alpha=alpha)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


def two_proportion_test(
    x1: int, n1: int, x2: int, n2: int, *, alpha: float = 0.05, exact_below: float = 5.0
) -> ProportionTest:
    """Test p1 == p2 (e.g. a group vs the rest of the population).

    Pooled two-proportion z-test; Fisher's exact test when any expected cell count is below
    ``exact_below`` (where the normal approximation is poor). Both n must be > 0.
    """
    if n1 <= 0 or n2 <= 0:
        raise MonitorInputError("two_proportion_test needs n1 > 0 and n2 > 0")
    d = x1 / n1 - x2 / n2
    low, high = newcombe_diff_ci(x1, n1, x2, n2, alpha=alpha)
    tot_s, tot = x1 + x2, n1 + n2
    pooled = tot_s / tot
    expected = [n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)]
    if min(expected) < exact_below:
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        p = float(sps.fisher_exact(table, alternative="two-sided").pvalue)
        return ProportionTest(d, low, high, min(1.0, p), "fisher-exact")
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p = 1.0 if se == 0 else float(2 * sps.norm.sf(abs(d) / se))
    return ProportionTest(d, low, high, p, "two-proportion-z")


def benjamini_hochberg(pvalues, q: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up: (rejected, adjusted p). NaN p-values are not tested (False/NaN)
    and do not count towards m."""
    p = np.asarray(pvalues, dtype="float64")
    rejected = np.zeros(p.shape, dtype=bool)
    adjusted = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return rejected, adjusted
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(adj_sorted, 1.0)
    adjusted[ok] = adj
    # decide by the step-up rule itself, p_(i) <= q i / m for the largest such i, not by
    # ``adj <= q``: p * m / i can round just above q when p_(i) == q i / m exactly
    passes = pv[order] <= np.arange(1, m + 1) / m * q
    k = int(np.nonzero(passes)[0].max()) + 1 if passes.any() else 0
    hit = np.zeros(m, dtype=bool)
    hit[order[:k]] = True
    rejected[ok] = hit
    return rejected, adjusted


# --- AUC (DeLong, fast midrank) --------------------------------------------------------------


class DeLongAUC(NamedTuple):
    """AUC with DeLong variance. ``ci`` is (None, None) when the variance is not defined."""

    auc: float | None
    variance: float | None
    ci: tuple[float | None, float | None]
    n_pos: int
    n_neg: int

    def to_dict(self) -> dict:
        return to_jsonable(self._asdict())


@dataclass(frozen=True, slots=True)
class _Placements:
    """DeLong structural components: v10 per positive, v01 per negative, in input row order."""

    v10: np.ndarray
    v01: np.ndarray


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype="float64")
    if y.shape != s.shape:
        raise MonitorInputError("labels and scores differ in length")
    if y.dtype != bool:
        y = y.astype("float64")
        if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
            raise MonitorInputError("labels must be 0/1 without missing values")
        y = y == 1.0
    if np.isnan(s).any():
        raise MonitorInputError("scores must not be missing")
    return y, s


def _placements(y: np.ndarray, s: np.ndarray) -> _Placements:
    """Sun & Xu (2014) midrank form of DeLong's components, via one stable sort.

    v10_i = P(neg < pos_i) + 0.5 P(neg == pos_i) over negatives; v01_j likewise over positives.
    Ties are blocks of equal score; counts per block and cumulative sums replace the O(mn) loop.
    """
    order = np.argsort(s, kind="mergesort")
    ss, yy = s[order], y[order]
    new = np.empty(len(ss), dtype=bool)
    new[:1] = True
    new[1:] = ss[1:] != ss[:-1]
    block = np.cumsum(new) - 1
    nb = int(block[-1]) + 1 if len(block) else 0
    posc = np.bincount(block, weights=yy, minlength=nb)
    negc = np.bincount(block, weights=~yy, minlength=nb)
    n_pos, n_neg = posc.sum(), negc.sum()
    neg_below = np.cumsum(negc) - negc
    pos_above = n_pos - np.cumsum(posc)
    val_sorted = np.where(
        yy, (neg_below + 0.5 * negc)[block] / n_neg, (pos_above + 0.5 * posc)[block] / n_pos
    )
    val = np.empty_like(val_sorted)
    val[order] = val_sorted
    return _Placements(v10=val[y], v01=val[~y])


def _ci(value: float, var: float | None, alpha: float) -> tuple[float | None, float | None]:
    if var is None or not math.isfinite(var):
        return None, None
    half = z_crit(alpha) * math.sqrt(max(var, 0.0))
    return max(0.0, value - half), min(1.0, value + half)


def delong_auc(labels, scores, *, alpha: float = 0.05) -> DeLongAUC:
    """AUC (Mann-Whitney, ties count 1/2) with DeLong variance and CI. Needs >= 1 pos and neg."""
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MonitorInputError("AUC needs at least one positive and one negative case")
    order = np.argsort(s, kind="mergesort")
    auc, var = sorted_auc_var(s[order], y[order])
    return DeLongAUC(auc, var, _ci(auc, var, alpha), n_pos, n_neg)


def sorted_auc_var(ss: np.ndarray, yy: np.ndarray) -> tuple[float, float | None]:
    """AUC and DeLong variance from scores already in ascending order (``yy`` their bool
    labels), with no sort: every case of a tie block has the same placement value, so the
    DeLong sums run over blocks weighted by their counts. Lets callers sort once and take
    subsets (a time window, a group) of the sorted arrays. Needs >= 1 positive and negative;
    variance None with fewer than 2 of a class."""
    new = np.empty(len(ss), dtype=bool)
    new[:1] = True
    new[1:] = ss[1:] != ss[:-1]
    block = np.cumsum(new) - 1
    nb = int(block[-1]) + 1
    pos = np.bincount(block, weights=yy, minlength=nb)
    neg = np.bincount(block, weights=~yy, minlength=nb)
    p_tot, n_tot = float(pos.sum()), float(neg.sum())
    v10 = (np.cumsum(neg) - 0.5 * neg) / n_tot  # negatives below + half the ties
    v01 = (p_tot - np.cumsum(pos) + 0.5 * pos) / p_tot  # positives above + half the ties
    # elementwise sums, not BLAS dot products: BLAS threads contend badly on a busy machine
    s1p, s2p = float((pos * v10).sum()), float((pos * v10 * v10).sum())
    s1n, s2n = float((neg * v01).sum()), float((neg * v01 * v01).sum())
    auc = s1p / p_tot
    if p_tot < 2 or n_tot < 2:
        return auc, None
    var = (s2p - s1p * s1p / p_tot) / (p_tot - 1) / p_tot + (s2n - s1n * s1n / n_tot) / (
        n_tot - 1
    ) / n_tot
    return auc, max(var, 0.0)


def auc_estimate(
    labels, scores, *, min_pos: int, min_neg: int, alpha: float = 0.05, metric: str = "auc"
) -> Estimate:
    """AUC as an Estimate (n = cases). UNDEFINED without positives or negatives,
    INSUFFICIENT_DATA below ``min_pos`` positives or ``min_neg`` negatives."""
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    min_n = max(min_pos, min_neg)
    if n_pos == 0 or n_neg == 0:
        return Estimate(metric, None, None, None, len(y), Status.UNDEFINED, "delong", n_pos, min_n)
    if n_pos < min_pos or n_neg < min_neg:
        return Estimate(
            metric, None, None, None, len(y), Status.INSUFFICIENT_DATA, "delong", n_pos, min_n
        )
    r = delong_auc(y, s, alpha=alpha)
    return Estimate(metric, r.auc, r.ci[0], r.ci[1], len(y), Status.OK, "delong", n_pos, min_n)


def _cov2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x2 sample covariance (ddof 1) with elementwise numpy (no BLAS, see sorted_auc_var)."""
    da, db = a - a.mean(), b - b.mean()
    k = len(a) - 1
    cab = float((da * db).sum()) / k
    return np.array([[float((da * da).sum()) / k, cab], [cab, float((db * db).sum()) / k]])


def paired_delong(labels, scores_a, scores_b, *, alpha: float = 0.05) -> PairedAUC:
    """Paired DeLong test of AUC(a) - AUC(b) on the same cases (DeLong et al. 1988, eq. for the
    covariance of two correlated AUCs). UNDEFINED when a class has fewer than 2 cases."""
    y, sa = _as_arrays(labels, scores_a)
    _, sb = _as_arrays(labels, scores_b)
    if sa.shape != sb.shape:
        raise MonitorInputError("scores_a and scores_b differ in length")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos < 2 or n_neg < 2:
        return PairedAUC(None, None, None, None, None, None, n_pos, n_neg, Status.UNDEFINED)
    pa, pb = _placements(y, sa), _placements(y, sb)
    auc_a, auc_b = float(pa.v10.mean()), float(pb.v10.mean())
    s10 = _cov2(pa.v10, pb.v10)
    s01 = _cov2(pa.v01, pb.v01)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / n_pos + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n_neg
    diff = auc_a - auc_b
    if var <= 0:  # identical rankings: no difference and nothing to test
        return PairedAUC(auc_a, auc_b, diff, diff, diff, 1.0, n_pos, n_neg, Status.OK)
    se = math.sqrt(var)
    z = z_crit(alpha)
    p = float(2 * sps.norm.sf(abs(diff) / se))
    return PairedAUC(auc_a, auc_b, diff, diff - z * se, diff + z * se, p, n_pos, n_neg, Status.OK)


def independent_auc_test(
    auc1: float, var1: float, auc2: float, var2: float, *, alpha: float = 0.05
) -> tuple[float, float, float, float]:
    """Two AUCs from disjoint cases (group vs rest): (difference, ci_low, ci_high, p)."""
    d = auc1 - auc2
    var = var1 + var2
    if var <= 0:
        return d, d, d, 1.0
    se = math.sqrt(var)
    z = z_crit(alpha)
    return d, d - z * se, d + z * se, float(2 * sps.norm.sf(abs(d) / se))


def hanley_mcneil_variance(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) variance of an AUC known only by value and class sizes (a model
    card's baseline), used when the raw scores behind it are not available."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    return (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )


def auc_vs_reference(
    auc: float,
    var: float,
    reference: float,
    *,
    ref_n_pos: int | None = None,
    ref_n_neg: int | None = None,
    alpha: float = 0.05,
) -> tuple[float, float, float, float, str]:
    """Production AUC vs a baseline AUC: (difference, ci_low, ci_high, p, method). With the
    baseline's class sizes its Hanley-McNeil variance is added (independent samples); without,
    the baseline is taken as a fixed number."""
    if ref_n_pos and ref_n_neg:
        ref_var = hanley_mcneil_variance(reference, ref_n_pos, ref_n_neg)
        d, lo, hi, p = independent_auc_test(auc, var, reference, ref_var, alpha=alpha)
        return d, lo, hi, p, "delong vs hanley-mcneil baseline"
    d, lo, hi, p = independent_auc_test(auc, var, reference, 0.0, alpha=alpha)
    return d, lo, hi, p, "delong z vs fixed baseline"


def grouped_delong(
    labels: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AUC and DeLong variance for every group of a partition at once (one lexsort).

    ``codes`` are 0..n_groups-1 (rows with code < 0 are ignored). Returns (auc, var, n_pos, n_neg)
    arrays of length n_groups; auc is NaN without both classes, var NaN with fewer than 2 of one.
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype="float64")
    g = np.asarray(codes, dtype="int64")
    keep = g >= 0
    if not keep.all():
        y, s, g = y[keep], s[keep], g[keep]
    auc = np.full(n_groups, np.nan)
    var = np.full(n_groups, np.nan)
    n_pos = np.bincount(g, weights=y, minlength=n_groups).astype("int64")
    n_neg = np.bincount(g, weights=~y, minlength=n_groups).astype("int64")
    if len(y) == 0:
        return auc, var, n_pos, n_neg
    # by group, then score: sort by score, then a stable (radix for small ints) sort by group
    by_score = np.argsort(s, kind="mergesort")
    gcode = g[by_score].astype("int16" if n_groups < 32_000 else "int64")
    order = by_score[np.argsort(gcode, kind="stable")]
    ss, yy, gg = s[order], y[order], g[order]
    new = np.empty(len(ss), dtype=bool)
    new[0] = True
    new[1:] = (ss[1:] != ss[:-1]) | (gg[1:] != gg[:-1])
    block = np.cumsum(new) - 1
    nb = int(block[-1]) + 1
    bgroup = gg[new]
    posc = np.bincount(block, weights=yy, minlength=nb)
    negc = np.bincount(block, weights=~yy, minlength=nb)
    neg_off = np.cumsum(n_neg) - n_neg  # negatives in earlier groups
    pos_end = np.cumsum(n_pos)  # positives up to and including this group
    neg_below = np.cumsum(negc) - negc - neg_off[bgroup]
    pos_above = pos_end[bgroup] - np.cumsum(posc)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(
            yy,
            (neg_below + 0.5 * negc)[block] / n_neg[gg],
            (pos_above + 0.5 * posc)[block] / n_pos[gg],
        )
        v = np.nan_to_num(v, nan=0.0, posinf=0.0)
        s1_pos = np.bincount(gg, weights=np.where(yy, v, 0.0), minlength=n_groups)
        s2_pos = np.bincount(gg, weights=np.where(yy, v * v, 0.0), minlength=n_groups)
        s1_neg = np.bincount(gg, weights=np.where(yy, 0.0, v), minlength=n_groups)
        s2_neg = np.bincount(gg, weights=np.where(yy, 0.0, v * v), minlength=n_groups)
        both = (n_pos > 0) & (n_neg > 0)
        auc = np.where(both, s1_pos / n_pos, np.nan)
        var10 = (s2_pos - s1_pos**2 / n_pos) / (n_pos - 1)
        var01 = (s2_neg - s1_neg**2 / n_neg) / (n_neg - 1)
        var = np.where((n_pos > 1) & (n_neg > 1), var10 / n_pos + var01 / n_neg, np.nan)
    return auc, np.maximum(var, 0.0), n_pos, n_neg


def estimate_from_auc(
    auc: float,
    var: float,
    n_pos: int,
    n_neg: int,
    *,
    min_pos: int,
    min_neg: int,
    alpha: float = 0.05,
    metric: str = "auc",
) -> Estimate:
    """Wrap a precomputed AUC/variance (e.g. from grouped_delong) as an Estimate with status."""
    n = int(n_pos + n_neg)
    min_n = max(min_pos, min_neg)
    if n_pos == 0 or n_neg == 0:
        return Estimate(metric, None, None, None, n, Status.UNDEFINED, "delong", int(n_pos), min_n)
    if n_pos < min_pos or n_neg < min_neg or not math.isfinite(var):
        return Estimate(
            metric, None, None, None, n, Status.INSUFFICIENT_DATA, "delong", int(n_pos), min_n
        )
    lo, hi = _ci(float(auc), float(var), alpha)
    return Estimate(metric, float(auc), lo, hi, n, Status.OK, "delong", int(n_pos), min_n)
