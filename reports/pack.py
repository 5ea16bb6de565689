"""The committee pack as plain data (``PackContent``): what content.py assembles and renderers draw.

Nothing here knows about HTML, PDF or the store. Numbers stay ``Estimate`` objects (value, CI, n,
status) until the template formats them, so a renderer can never drop the n or the CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitors.results import Estimate


@dataclass(slots=True)
class Kpi:
    """One KPI of one model in the period, beside its baseline and target."""

    label: str  # "Sensitivity"
    estimate: Estimate
    baseline: float | None = None
    target: float | None = None
    assessment: str = ""  # "meets target", "below target (CI excludes it)", ...
    level: str = "ok"  # ok / watch / act (drives the verdict)


@dataclass(slots=True)
class SeriesPoint:
    """One point of a trend: a period label and its estimate."""

    label: str
    estimate: Estimate


@dataclass(slots=True)
class Trend:
    metric: str  # "sensitivity"
    points: list[SeriesPoint]
    baseline: float | None = None
    target: float | None = None


@dataclass(slots=True)
class ControlChart:
    """A control chart as numbers: x labels, the plotted statistic and its limit(s)."""

    title: str
    statistic: str  # "CUSUM (lower)", "EWMA", ...
    x: list[str]
    values: list[float | None]
    upper: list[float | None] | float | None = None
    lower: list[float | None] | float | None = None
    center: float | None = None
    signals: list[int] = field(default_factory=list)  # indexes where the chart signalled
    note: str = ""


@dataclass(slots=True)
class AlertEntry:
    """An alert and what happened to it inside the period."""

    id: int
    kind: str
    severity: str
    subgroup: str
    metric: str
    summary: str
    status: str
    first_seen: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None
    opened_in_period: bool
    acknowledged_in_period: bool
    resolved_in_period: bool
    open_at_end: bool = True  # not resolved before the window's end


@dataclass(slots=True)
class AlertCounts:
    opened: int = 0
    acknowledged: int = 0
    resolved: int = 0
    open_at_end: int = 0  # still open (not resolved) at the end of the window


@dataclass(slots=True)
class FairnessRow:
    attribute: str
    group: str
    n: int
    metric: str
    estimate: Estimate
    gap: float | None  # group minus reference (or overall), in metric units
    p_value: float | None
    q_value: float | None  # Benjamini-Hochberg adjusted
    significant: bool
    reference: str = ""


@dataclass(slots=True)
class DriftRow:
    feature: str
    test: str
    statistic: float | None
    effect: float | None
    threshold: str
    drifted: bool
    note: str = ""


@dataclass(slots=True)
class RescoringSummary:
    n: int
    agreement: Estimate | None  # share of cases with the same call
    mean_abs_difference: float | None
    call_flips: int
    errors: int
    note: str = ""


@dataclass(slots=True)
class DiscordanceSummary:
    """AI call vs reference label in the period, and what adjudication decided."""

    labelled: int
    false_positives: int
    false_negatives: int
    adjudicated: int
    adjudicated_agree_ai: int
    adjudicated_agree_report: int
    awaiting_review: int


@dataclass(slots=True)
class ModelSection:
    name: str
    card: dict[str, Any]  # vendor, product, finding, version, threshold, status, owner, ...
    verdict: str  # "on target" / "watch" / "act"
    verdict_reasons: list[str]
    n_cases: int
    n_labelled: int
    kpis: list[Kpi]
    trends: list[Trend]
    control_charts: list[ControlChart]
    alerts: list[AlertEntry]
    alert_counts: AlertCounts
    fairness: list[FairnessRow]
    fairness_note: str
    drift: list[DriftRow]
    drift_note: str
    rescoring: RescoringSummary | None
    discordance: DiscordanceSummary
    versions_seen: list[str]


@dataclass(slots=True)
class Measure:
    """A programme figure that is either measured from the feeds or an assumption (marked)."""

    label: str
    value: str
    basis: str  # "measured" / "assumed"
    detail: str = ""


@dataclass(slots=True)
class TimeRow:
    """One median (or difference of medians) of turnaround or read time, from
    monitors.turnaround: minutes with the 95% CI and n, marked measured or assumed."""

    model: str
    measure: str  # "turnaround" / "read time"
    group: str  # "before go-live", "after go-live", "after − before", "AI-flagged", ...
    value: str  # minutes ("42.1", "+3.0") or the status in words
    ci: str  # "38.0–45.2" (medians) / "-8.0 to -2.4" (differences) / ""
    n: str
    basis: str  # "measured" / "assumed"
    detail: str = ""


@dataclass(slots=True)
class VolumeRow:
    site: str
    model: str
    studies: int
    flagged: int
    labelled: int


@dataclass(slots=True)
class ChecklistRow:
    scope: str  # model name or "programme"
    item: str
    status: str
    owner: str
    updated_at: datetime | None
    changed_in_period: bool


@dataclass(slots=True)
class ChecklistChange:
    at: datetime | None
    scope: str
    item: str
    status: str
    by: str
    note: str


@dataclass(slots=True)
class InventoryChange:
    at: datetime | None
    model: str
    version: str
    by: str
    note: str


@dataclass(slots=True)
class Programme:
    volume: list[VolumeRow]
    volume_by_week: list[tuple[str, int]]
    times: list[TimeRow]  # turnaround and read time per model (monitors.turnaround)
    times_note: str
    roi: list[Measure]
    roi_note: str
    checklist: list[ChecklistRow]
    checklist_counts: dict[str, int]
    checklist_changes: list[ChecklistChange]
    inventory: list[dict[str, Any]]
    inventory_changes: list[InventoryChange]


@dataclass(slots=True)
class PackContent:
    """Everything the committee pack shows, for one window."""

    title: str
    period: str
    period_label: str
    window_start: datetime
    window_end: datetime
    generated_at: datetime
    vigil_version: str
    sites: list[str]
    models: list[str]
    model_filter: str | None
    n_cases: int
    export_command: str
    summary: list[tuple[str, str, list[str]]]  # (model, verdict, reasons)
    sections: list[ModelSection]
    programme: Programme
    signoff_roles: list[str]
    notes: list[str] = field(default_factory=list)
