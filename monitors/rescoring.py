"""Re-scoring agreement: the production score of a case vs the score of re-running the model.

The same model on the same image should give the same score (up to floating-point noise). A
difference beyond a small tolerance means something changed silently: the vendor's model, its
preprocessing, or the images it receives. So the monitor reports how far the scores move (mean
absolute and mean signed difference with t-intervals), how many cases move beyond the tolerance
and how many calls flip at the operating threshold (Wilson CIs), and ``disagrees`` when

- the share of cases beyond the tolerance is above ``max_share_beyond`` with 95% confidence (its
  Wilson lower bound exceeds it; valid at any n, so ten of ten cases off raise it), or
- the mean absolute difference is above the tolerance with 95% confidence (CI lower bound).

Input columns: ``production_score`` and ``rescore_score`` (as the RescoreResult table), optional
``threshold`` (per case; else the ``threshold`` argument), ``label`` (1/0, for a paired DeLong
AUC comparison) and ``error`` (rows with an error are left out).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from monitors.performance import MIN_N
from monitors.results import Estimate, PairedAUC, RescoringAgreement, Status
from monitors.stats import MonitorInputError, paired_delong, proportion, wilson

__all__ = ["DEFAULT_TOLERANCE", "MAX_SHARE_BEYOND", "mean_estimate", "rescoring_agreement"]

DEFAULT_TOLERANCE = 0.02  # absolute score difference still called "the same score"
MAX_SHARE_BEYOND = 0.01  # share of cases beyond the tolerance accepted as noise


def mean_estimate(metric: str, values: np.ndarray, *, min_n: int, alpha: float = 0.05) -> Estimate:
    """Mean with a Student t confidence interval (values bounded, so the CLT holds quickly)."""
    n = len(values)
    if n == 0:
        return Estimate(metric, None, None, None, 0, Status.UNDEFINED, "t-interval", None, min_n)
    if n < max(min_n, 2):
        return Estimate(
            metric, None, None, None, n, Status.INSUFFICIENT_DATA, "t-interval", None, min_n
        )
    m = float(values.mean())
    se = float(values.std(ddof=1)) / math.sqrt(n)
    half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * se
    return Estimate(metric, m, m - half, m + half, n, Status.OK, "t-interval", None, min_n)


def rescoring_agreement(
    df: pd.DataFrame,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    threshold: float | None = None,
    max_share_beyond: float = MAX_SHARE_BEYOND,
    mean_tolerance: float | None = None,
    max_flip_rate: float | None = None,
    min_n: int = MIN_N,
    alpha: float = 0.05,
) -> RescoringAgreement:
    """Agreement of production vs re-run scores over the cases of ``df`` (one model).

    ``tolerance`` is the per-case limit; ``mean_tolerance`` (default: ``tolerance``) the limit
    on the mean absolute difference; ``max_flip_rate`` (default: no rule) the limit on call
    flips — the three a re-scoring spec declares. Each rule fires only when the whole 95%
    interval lies beyond its limit, so a small sample cannot raise an alert by chance.
    """
    need = {"production_score", "rescore_score"}
    if missing := need - set(df.columns):
        raise MonitorInputError(f"re-scoring frame lacks columns: {', '.join(sorted(missing))}")
    if tolerance < 0:
        raise MonitorInputError("tolerance must be >= 0")
    d = df
    if "error" in d.columns:
        d = d[d["error"].isna()]
    a = d["production_score"].to_numpy(dtype="float64", na_value=np.nan)
    b = d["rescore_score"].to_numpy(dtype="float64", na_value=np.nan)
    ok = ~np.isnan(a) & ~np.isnan(b)
    if threshold is None and "threshold" in d.columns:
        thr = d["threshold"].to_numpy(dtype="float64", na_value=np.nan)
        ok &= ~np.isnan(thr)
    elif threshold is not None:
        thr = np.full(len(a), float(threshold))
    else:
        thr = None
    a, b = a[ok], b[ok]
    n = len(a)
    diff = b - a
    absd = np.abs(diff)
    beyond = int((absd > tolerance).sum())
    mad = mean_estimate("mean_abs_diff", absd, min_n=min_n, alpha=alpha)
    if mad.status is Status.OK:  # an absolute difference cannot be negative
        mad = Estimate(
            mad.metric,
            mad.value,
            max(0.0, mad.ci_low),
            mad.ci_high,
            mad.n,
            mad.status,
            mad.method,
            None,
            min_n,
        )
    md = mean_estimate("mean_diff", diff, min_n=min_n, alpha=alpha)
    share = proportion("share_beyond_tolerance", beyond, n, min_n=min_n, alpha=alpha)
    if thr is not None:
        t = thr[ok]
        pa, pb = a >= t, b >= t
        to_pos, to_neg = int((~pa & pb).sum()), int((pa & ~pb).sum())
        flips = proportion("call_flips", to_pos + to_neg, n, min_n=min_n, alpha=alpha)
    else:
        to_pos = to_neg = 0
        flips = Estimate("call_flips", None, None, None, n, Status.UNDEFINED, "wilson", None, min_n)
    paired: PairedAUC | None = None
    if "label" in d.columns:
        lab = d["label"].to_numpy(dtype="float64", na_value=np.nan)[ok]
        has = ~np.isnan(lab)
        if has.any():
            paired = paired_delong(lab[has] == 1, a[has], b[has], alpha=alpha)

    reasons: list[str] = []
    if n:
        low, _ = wilson(beyond, n, alpha=alpha)
        if low > max_share_beyond:
            reasons.append(
                f"{beyond} of {n} cases differ by more than {tolerance:g} (share lower 95% "
                f"bound {low:.3f} > {max_share_beyond:g})"
            )
    mean_limit = tolerance if mean_tolerance is None else mean_tolerance
    if mad.status is Status.OK and mad.ci_low is not None and mad.ci_low > mean_limit:
        reasons.append(
            f"mean absolute difference {mad.value:.4f} (95% CI from {mad.ci_low:.4f}) "
            f"exceeds the tolerance {mean_limit:g}"
        )
    if (
        max_flip_rate is not None
        and flips.status is Status.OK
        and flips.ci_low is not None
        and flips.ci_low > max_flip_rate
    ):
        reasons.append(
            f"call flips {flips.value:.3f} (95% CI from {flips.ci_low:.3f}) exceed "
            f"{max_flip_rate:g}"
        )
    status = Status.UNDEFINED if n == 0 else (Status.INSUFFICIENT_DATA if n < min_n else Status.OK)
    return RescoringAgreement(
        n=n,
        status=status,
        tolerance=tolerance,
        threshold=threshold,
        max_share_beyond=max_share_beyond,
        mean_abs_diff=mad,
        mean_diff=md,
        max_abs_diff=float(absd.max()) if n else None,
        share_beyond_tolerance=share,
        call_flips=flips,
        flips_to_positive=to_pos,
        flips_to_negative=to_neg,
        paired_auc=paired,
        disagrees=bool(reasons),
        reasons=reasons,
    )
