"""Plain result objects every monitor returns (and the dashboard, reports and JSON export read).

A number is never shown alone: an ``Estimate`` carries its n, its 95% CI and the method, and a
``status`` that makes "insufficient data" and "undefined" explicit instead of a silent 0 or NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"  # denominator below the stated minimum n
    UNDEFINED = "undefined"  # no denominator at all (e.g. PPV with no positive calls)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric with its uncertainty. ``value``/``ci_*`` are None unless status is OK."""

    metric: str  # sensitivity / specificity / ppv / npv / flag_rate / fp_per_study / auc / ...
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # the denominator (cases the metric is computed over)
    status: Status
    method: str  # "wilson", "delong", "poisson-exact", ...
    numerator: int | None = None
    min_n: int | None = None  # the stated minimum below which status is INSUFFICIENT_DATA

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

    def display(self, digits: int = 3) -> str:
        """'0.912 (0.880-0.937), n=412' or the status in words."""
        if self.status is Status.OK and self.value is not None:
            return (
                f"{self.value:.{digits}f} ({self.ci_low:.{digits}f}-{self.ci_high:.{digits}f}), "
                f"n={self.n}"
            )
        words = "insufficient data" if self.status is Status.INSUFFICIENT_DATA else "undefined"
        return f"{words} (n={self.n})"


# --- result objects of the statistical monitors (stats, performance, control_chart, fairness,
# rescoring). Each has ``to_dict()`` giving JSON-ready data: Status -> str, times -> ISO 8601,
# NaN/inf -> None, numpy scalars -> Python numbers, nested results -> dicts.


def to_jsonable(obj: Any) -> Any:
    """Recursively turn results (dataclasses, enums, numpy, pandas times) into JSON-ready data."""
    import datetime as _dt
    import math
    from dataclasses import fields, is_dataclass

    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, Status):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    try:  # numpy scalars / pandas NA without importing them at module import time
        import numpy as np
        import pandas as pd

        if obj is pd.NA or obj is pd.NaT:
            return None
        if isinstance(obj, pd.Timestamp):
            return obj.isoformat()
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return to_jsonable(float(obj))
        if isinstance(obj, np.ndarray):
            return [to_jsonable(v) for v in obj.tolist()]
    except ImportError:  # pragma: no cover - numpy/pandas are dependencies
        pass
    return str(obj)


class _JSONResult:
    """Mixin: ``to_dict()`` for the result dataclasses below."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass(frozen=True, slots=True)
class Comparison(_JSONResult):
    """One metric against the model card's baseline: the production estimate, the baseline, the
    difference (production - baseline) with its CI and a test. ``below_baseline`` is True only
    when the decline is significant at the stated alpha (difference CI entirely below 0)."""

    metric: str
    value: float | None  # production estimate
    ci_low: float | None  # CI of the production estimate
    ci_high: float | None
    n: int
    baseline: float | None
    baseline_n: int | None  # the baseline's denominator (None: baseline taken as fixed)
    difference: float | None
    diff_ci_low: float | None
    diff_ci_high: float | None
    p_value: float | None
    method: str
    status: Status
    below_baseline: bool


@dataclass(frozen=True, slots=True)
class PairedAUC(_JSONResult):
    """Paired DeLong comparison of two scores on the same cases (e.g. production vs re-scored)."""

    auc_a: float | None
    auc_b: float | None
    difference: float | None  # auc_a - auc_b
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_pos: int
    n_neg: int
    status: Status
    method: str = "delong-paired"


@dataclass(frozen=True, slots=True)
class PerformanceSummary(_JSONResult):
    """Performance of one model over a frame: every metric an Estimate with n and 95% CI."""

    model: str
    finding: str | None
    period_start: Any  # pd.Timestamp | None (exam_at range)
    period_end: Any
    n_results: int  # AI results (rows) = volume
    n_studies: int
    n_labelled: int  # with a 1/0 reference label
    n_positive: int
    n_negative: int
    n_uncertain: int
    n_pending: int
    versions: list[str]
    metrics: dict[str, Estimate]  # sensitivity specificity ppv npv flag_rate fp_per_study auc
    label_coverage: Estimate  # share of AI results with a final read (not pending)
    vs_baseline: list[Comparison]
    paired: PairedAUC | None  # production vs re-scored where both exist on the same cases
    min_n: int
    min_pos: int
    min_neg: int


@dataclass(frozen=True, slots=True)
class PeriodPerformance(_JSONResult):
    """Performance in one period (week, month, or a rolling window ending at ``end``)."""

    period: str  # "2026-W09", "2026-03", or "rolling 4W to 2026-W09"
    start: Any
    end: Any  # exclusive
    kind: str  # "W" / "M" / "rolling"
    n_results: int
    n_labelled: int
    metrics: dict[str, Estimate]
    label_coverage: Estimate


@dataclass(frozen=True, slots=True)
class ThresholdPoint(_JSONResult):
    """The operating characteristics if the threshold were ``threshold`` (score >= t is a call)."""

    threshold: float
    is_operating: bool
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    flag_rate: Estimate
    fp_per_study: Estimate


@dataclass(frozen=True, slots=True)
class ChartParameters(_JSONResult):
    """How a control chart was designed, so the false-alarm rate can be checked by anyone."""

    kind: str  # "cusum" / "ewma"
    direction: str  # "lower" / "upper" / "two-sided"
    arl0: float  # stated in-control average run length (periods between false alarms)
    shift_sd: float  # design shift, in standard deviations of a period's statistic
    k: float | None  # CUSUM reference value
    h: float | None  # CUSUM decision interval
    lam: float | None  # EWMA smoothing weight
    L: float | None  # EWMA limit width in asymptotic SDs
    arl1: float | None  # out-of-control ARL at the design shift (same method)
    method: str  # how h / L were chosen, e.g. "Siegmund (1985) approximation"
    transform: str  # how a period's proportion is standardised


@dataclass(frozen=True, slots=True)
class ChartPoint(_JSONResult):
    period: str
    n: int
    successes: int
    value: float | None  # the period's proportion (None when n == 0)
    z: float | None  # standardised deviation from target
    statistic: float | None  # CUSUM S_t (>= 0, grows on a decline) or EWMA Z_t
    lower_limit: float | None
    upper_limit: float | None
    alarm: bool
    status: Status
    statistic_upper: float | None = None  # two-sided CUSUM: the upper-side statistic


@dataclass(frozen=True, slots=True)
class ControlChart(_JSONResult):
    metric: str
    target: float | None
    target_source: str  # "baseline" / "reference periods ..." / "given"
    parameters: ChartParameters
    points: list[ChartPoint]
    alarms: list[str]  # periods where the chart signalled
    first_alarm: str | None
    status: Status
    description: str


@dataclass(frozen=True, slots=True)
class SubgroupRow(_JSONResult):
    """One group x metric: the group's estimate, the rest's, the gap (group - rest) and its test."""

    attribute: str
    group: str
    metric: str
    estimate: Estimate
    rest: Estimate
    gap: float | None
    gap_ci_low: float | None
    gap_ci_high: float | None
    p_value: float | None
    p_adjusted: float | None  # BH across everything tested in the same scan / table
    test: str | None  # "two-proportion-z" / "fisher-exact" / "delong-independent"
    alert: bool
    status: Status
    reason: str  # why it is or is not an alert, in words


@dataclass(frozen=True, slots=True)
class SubgroupTable(_JSONResult):
    model: str
    attribute: str
    groups: list[str]
    metrics: list[str]
    min_n: int
    q: float
    min_effect: float
    rows: list[SubgroupRow]

    def alerts(self) -> list[SubgroupRow]:
        return [r for r in self.rows if r.alert]


@dataclass(frozen=True, slots=True)
class FairnessScan(_JSONResult):
    model: str
    q: float
    min_n: int
    min_effect: float
    n_tests: int  # hypotheses entering the BH procedure
    tables: list[SubgroupTable]
    alerts: list[SubgroupRow]


@dataclass(frozen=True, slots=True)
class RescoringAgreement(_JSONResult):
    """Production vs re-run scores of the same cases. ``disagrees`` flags a silent model or
    preprocessing change; ``reasons`` says which rule fired."""

    n: int
    status: Status
    tolerance: float
    threshold: float | None
    max_share_beyond: float
    mean_abs_diff: Estimate
    mean_diff: Estimate  # re-run minus production (bias)
    max_abs_diff: float | None
    share_beyond_tolerance: Estimate
    call_flips: Estimate
    flips_to_positive: int
    flips_to_negative: int
    paired_auc: PairedAUC | None
    disagrees: bool
    reasons: list[str]
