"""Turnaround and read time: medians with distribution-free CIs, before/after and flagged/other.

Pure functions over the case frame (no Streamlit), so they are tested against an independent
computation (scipy's ``quantile_test`` confidence interval for the median).

Median CI: the order-statistic (binomial) interval. With X ~ Binomial(n, 1/2), the interval
[x_(l), x_(u)] with l = the largest k such that P(X < k) <= alpha/2 (1-based), u = n + 1 - l
covers the median with probability >= 1 - alpha, for any continuous distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_N = 10  # below this a median CI is not reported


@dataclass(frozen=True, slots=True)
class MedianCI:
    median: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: str  # ok / insufficient_data / undefined
    method: str = "order-statistic (binomial)"


def median_ci(values, alpha: float = 0.05, min_n: int = MIN_N) -> MedianCI:
    """Sample median with its exact order-statistic CI (NaNs dropped)."""
    x = np.asarray(values, dtype="float64")
    x = np.sort(x[~np.isnan(x)])
    n = int(x.size)
    if n == 0:
        return MedianCI(None, None, None, 0, "undefined")
    med = float(np.median(x))
    if n < min_n:
        return MedianCI(None, None, None, n, "insufficient_data")
    # largest 1-based rank l with P(X <= l-1) <= alpha/2
    lo_rank = int(sps.binom.ppf(alpha / 2.0, n, 0.5))
    if sps.binom.cdf(lo_rank, n, 0.5) > alpha / 2.0:
        lo_rank -= 1
    lo_rank = max(lo_rank, 0)  # number of order stats strictly below the interval
    hi_rank = n - 1 - lo_rank  # 0-based index of the upper bound
    return MedianCI(med, float(x[lo_rank]), float(x[hi_rank]), n, "ok")


@dataclass(frozen=True, slots=True)
class Comparison:
    model: str
    measure: str  # turnaround_min / read_min
    comparison: str  # "go-live" / "AI flag (after go-live)"
    group: str
    result: MedianCI

    def row(self) -> dict:
        r = self.result
        return {
            "model": self.model,
            "measure": self.measure,
            "comparison": self.comparison,
            "group": self.group,
            "n": r.n,
            "median_min": r.median if r.status == "ok" else None,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "status": r.status,
        }


def compare_medians(
    frame: pd.DataFrame, go_live: dict[str, date | None], measure: str = "turnaround_min"
) -> pd.DataFrame:
    """Per model: median ``measure`` before vs after go-live, and (after go-live) AI-flagged
    vs other studies. Rows without the measure are left out (their n is what remains)."""
    out: list[dict] = []
    cols = ["model", "exam_at", "ai_call", measure]
    df = frame[cols]
    df = df[df[measure].notna()]
    for model, g in df.groupby("model", observed=True):
        gl = go_live.get(str(model))
        if gl is not None:
            cut = pd.Timestamp(gl, tz="UTC")
            before = g[g["exam_at"] < cut]
            after = g[g["exam_at"] >= cut]
            for name, part in (("before go-live", before), ("after go-live", after)):
                out.append(
                    Comparison(str(model), measure, "go-live", name, median_ci(part[measure])).row()
                )
        else:
            after = g
        flagged = after["ai_call"].fillna(False).astype(bool)
        for name, part in (("AI-flagged", after[flagged]), ("not flagged", after[~flagged])):
            out.append(
                Comparison(str(model), measure, "AI flag", name, median_ci(part[measure])).row()
            )
    return pd.DataFrame(
        out,
        columns=[
            "model",
            "measure",
            "comparison",
            "group",
            "n",
            "median_min",
            "ci_low",
            "ci_high",
            "status",
        ],
    )


def read_time_coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """Share of cases per site whose feed carries read times (OBR-32): measured vs not."""
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
