"""Turnaround and read time: medians with distribution-free CIs, before/after go-live and
AI-flagged vs other studies. Shared by the dashboard and the committee pack so both print the
same numbers.

Pure functions over the case frame (no I/O). Times are skewed with long tails, so the median is
reported, never the mean, with its exact order-statistic CI: with X ~ Binomial(n, 1/2), the
interval [x_(l), x_(n+1-l)] with l the largest rank such that P(X < l) <= alpha/2 covers the
median with probability >= 1 - alpha for any continuous distribution (the interval scipy's
``quantile_test(...).confidence_interval`` gives).

Difference of two medians (b - a): normal approximation with each median's standard error taken
from its order-statistic interval, SE = (x_(u) - x_(l)) / (2 z) (McKean & Schrader 1984; the
Price & Bonett 2002 interval for a difference of medians). It needs no resampling, so it stays
fast on a million studies and gives the same numbers on every run.

One row per study and model: a study's turnaround is one number even when the model reports
several findings, and a study counts as AI-flagged when any finding was called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy import stats as sps

from monitors.results import Status, _JSONResult

MIN_N = 10  # below this a median CI is not reported
MEASURES = {"turnaround_min": "turnaround", "read_min": "read time"}
METHOD = "order-statistic (binomial)"
DIFF_METHOD = "difference of medians, SE from order-statistic CIs (Price-Bonett)"


@dataclass(frozen=True, slots=True)
class MedianCI(_JSONResult):
    """A median in minutes with its CI. ``median``/``ci_*`` are None unless status is OK."""

    median: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: Status
    method: str = METHOD
    min_n: int = MIN_N
    group: str = ""

    def display(self, digits: int = 1) -> str:
        if self.status is Status.OK:
            return (
                f"{self.median:.{digits}f} ({self.ci_low:.{digits}f}-{self.ci_high:.{digits}f}) "
                f"min, n={self.n}"
            )
        words = "insufficient data" if self.status is Status.INSUFFICIENT_DATA else "no data"
        return f"{words} (n={self.n})"


@dataclass(frozen=True, slots=True)
class MedianDifference(_JSONResult):
    """``b`` minus ``a`` (e.g. after - before go-live; flagged - not flagged), in minutes."""

    comparison: str  # "go-live" / "AI flag"
    a: MedianCI
    b: MedianCI
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    status: Status
    alpha: float = 0.05
    method: str = DIFF_METHOD

    @property
    def significant(self) -> bool:
        """The difference's CI excludes 0."""
        return (
            self.status is Status.OK
            and self.ci_low is not None
            and (self.ci_low > 0 or self.ci_high < 0)
        )


@dataclass(frozen=True, slots=True)
class ModelTimes(_JSONResult):
    """One model's turnaround (or read time): before vs after go-live, and after go-live
    AI-flagged vs not flagged. ``go_live`` None: no before/after, flagged vs not over all."""

    model: str
    measure: str  # turnaround_min / read_min
    go_live: date | None
    n_cases: int  # studies of the model in scope (with or without the measure)
    n_measured: int  # of those, with the measure (read time: the feed carries OBR-32)
    go_live_change: MedianDifference | None  # a = before, b = after
    flag_effect: MedianDifference  # a = not flagged, b = AI-flagged


def median_ci(values, alpha: float = 0.05, min_n: int = MIN_N, group: str = "") -> MedianCI:
    """Sample median with its exact order-statistic CI (NaNs dropped)."""
    x = np.asarray(values, dtype="float64")
    x = np.sort(x[~np.isnan(x)])
    n = int(x.size)
    if n == 0:
        return MedianCI(None, None, None, 0, Status.UNDEFINED, min_n=min_n, group=group)
    if n < min_n:
        return MedianCI(None, None, None, n, Status.INSUFFICIENT_DATA, min_n=min_n, group=group)
    med = float(np.median(x))
    # l = number of order statistics strictly below the interval: largest with P(X<=l-1)<=a/2
    lo_rank = int(sps.binom.ppf(alpha / 2.0, n, 0.5))
    if sps.binom.cdf(lo_rank, n, 0.5) > alpha / 2.0:
        lo_rank -= 1
    lo_rank = max(lo_rank, 0)
    hi_rank = n - 1 - lo_rank  # 0-based index of the upper bound
    return MedianCI(
        med, float(x[lo_rank]), float(x[hi_rank]), n, Status.OK, min_n=min_n, group=group
    )


def median_difference(
    a: MedianCI, b: MedianCI, comparison: str, alpha: float = 0.05
) -> MedianDifference:
    """b - a with a normal-approximation CI from the two medians' order-statistic SEs."""
    if a.status is not Status.OK or b.status is not Status.OK:
        none = Status.UNDEFINED in (a.status, b.status)
        worst = Status.UNDEFINED if none else Status.INSUFFICIENT_DATA
        return MedianDifference(comparison, a, b, None, None, None, worst, alpha)
    z = float(sps.norm.ppf(1 - alpha / 2))
    se_a = (a.ci_high - a.ci_low) / (2 * z)
    se_b = (b.ci_high - b.ci_low) / (2 * z)
    d = b.median - a.median
    half = z * math.sqrt(se_a**2 + se_b**2)
    return MedianDifference(comparison, a, b, d, d - half, d + half, Status.OK, alpha)


def _studies(frame: pd.DataFrame, model: str, measure: str) -> pd.DataFrame:
    """One row per study of ``model``: exam time, measure, flagged (any finding called)."""
    mask = (frame["model"] == model).to_numpy(dtype=bool, na_value=False)
    m = frame[["study_id", "exam_at", "ai_call", measure]][mask]  # copy 4 columns, not ~30
    if m.empty:
        return pd.DataFrame(
            {
                "study_id": pd.Series(dtype="int64"),
                "exam_at": pd.Series(dtype="datetime64[ns, UTC]"),
                measure: pd.Series(dtype="float64"),
                "flagged": pd.Series(dtype="bool"),
            }
        )
    call = m["ai_call"].astype("boolean").fillna(False).astype(bool)
    if m["study_id"].is_unique:  # one finding per model: no grouping needed
        return pd.DataFrame(
            {
                "study_id": m["study_id"].to_numpy(),
                "exam_at": m["exam_at"].reset_index(drop=True),
                measure: m[measure].to_numpy(dtype="float64", na_value=np.nan),
                "flagged": call.to_numpy(),
            }
        )
    g = m.assign(flagged=call).groupby("study_id", sort=False)
    return pd.DataFrame(
        {
            "exam_at": g["exam_at"].first(),
            measure: g[measure].first(),
            "flagged": g["flagged"].any(),
        }
    ).reset_index()


def model_times(
    frame: pd.DataFrame,
    model: str,
    go_live: date | None,
    measure: str = "turnaround_min",
    *,
    since=None,
    until=None,
    before_days: int | None = None,
    alpha: float = 0.05,
    min_n: int = MIN_N,
) -> ModelTimes:
    """Before vs after go-live, and (after go-live) AI-flagged vs not flagged, for one model.

    ``since``/``until`` (UTC times, end excluded) restrict the "after" side, e.g. to a report's
    month; ``before_days`` restricts "before" to that many days before go-live. Studies without
    the measure are left out of the medians (``n_measured`` says how many carry it)."""
    s = _studies(frame, model, measure)
    at = s["exam_at"]
    in_scope = pd.Series(True, index=s.index)
    if since is not None:
        in_scope &= at >= pd.Timestamp(since)
    if until is not None:
        in_scope &= at < pd.Timestamp(until)
    cut = pd.Timestamp(go_live, tz="UTC") if go_live is not None else None
    after = in_scope & (at >= cut) if cut is not None else in_scope
    has = s[measure].notna()
    change = None
    n_cases = int(after.sum())
    if cut is not None:
        before = at < cut
        if before_days is not None:
            before &= at >= cut - timedelta(days=before_days)
        n_cases += int(before.sum())
        change = median_difference(
            median_ci(s.loc[before & has, measure], alpha, min_n, "before go-live"),
            median_ci(s.loc[after & has, measure], alpha, min_n, "after go-live"),
            "go-live",
            alpha,
        )
        n_measured = int((before & has).sum() + (after & has).sum())
    else:
        n_measured = int((after & has).sum())
    flagged = s["flagged"].to_numpy(dtype=bool)
    effect = median_difference(
        median_ci(s.loc[after & has & ~flagged, measure], alpha, min_n, "not flagged"),
        median_ci(s.loc[after & has & flagged, measure], alpha, min_n, "AI-flagged"),
        "AI flag",
        alpha,
    )
    return ModelTimes(model, measure, go_live, n_cases, n_measured, change, effect)


TABLE_COLUMNS = [
    "model",
    "measure",
    "comparison",
    "group",
    "n",
    "median_min",
    "ci_low",
    "ci_high",
    "status",
]


def times_table(results: list[ModelTimes]) -> pd.DataFrame:
    """The results as rows: model, measure, comparison, group, n, median_min, ci_low/high,
    status (before/after go-live first, then AI-flagged / not flagged)."""
    out = []
    for r in results:
        pairs = []
        if r.go_live_change is not None:
            pairs.append(("go-live", r.go_live_change.a))
            pairs.append(("go-live", r.go_live_change.b))
        pairs.append(("AI flag", r.flag_effect.b))
        pairs.append(("AI flag", r.flag_effect.a))
        for comparison, m in pairs:
            out.append(
                {
                    "model": r.model,
                    "measure": r.measure,
                    "comparison": comparison,
                    "group": m.group,
                    "n": m.n,
                    "median_min": m.median,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "status": str(m.status),
                }
            )
    return pd.DataFrame(out, columns=TABLE_COLUMNS)


def compare_medians(
    frame: pd.DataFrame, go_live: dict[str, date | None], measure: str = "turnaround_min"
) -> pd.DataFrame:
    """Every model in the frame over all its rows, as a table (see ``times_table``)."""
    models = sorted(str(m) for m in frame["model"].dropna().unique())
    return times_table([model_times(frame, m, go_live.get(m), measure) for m in models])


def read_time_coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases per site and how many carry read times (OBR-32): measured vs not."""
    g = frame.groupby("site", observed=True)["read_min"]
    return pd.DataFrame({"cases": g.size(), "with_read_time": g.count()}).reset_index()


def annual_volume(frame: pd.DataFrame, model: str | None = None) -> tuple[float, int, float]:
    """(studies per year, studies seen, days covered): measured volume, annualised."""
    df = frame if model is None else frame[frame["model"] == model]
    n = int(df["study_id"].nunique())
    t = df["exam_at"].dropna()
    if t.empty or n == 0:
        return 0.0, n, 0.0
    days = max((t.max() - t.min()).total_seconds() / 86400.0, 1.0)
    return n * 365.0 / days, n, days
