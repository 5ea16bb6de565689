"""The business case, as a pure calculation (no Streamlit, no store): inputs in, figures out.

Every input says where its default comes from, and whether the figure that feeds it was
*measured* by Vigil or is an *assumption* someone typed in, so the page can keep the two apart.
Money is in the hospital's currency (US dollars in the defaults).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class InputSpec:
    key: str
    label: str
    unit: str
    default: float
    low: float  # the sensitivity range
    high: float
    source: str


# Defaults with their sources. Ranges are the sensitivity analysis' low/high values.
INPUT_SPECS: list[InputSpec] = [
    InputSpec(
        "upfront_cost",
        "Upfront cost (licence, hardware, integration)",
        "$",
        100_000,
        50_000,
        150_000,
        "On-premise deployments: $50k-150k upfront (vendor quotes as summarised in "
        "AI-in-radiology business-case guides); replace with your quote",
    ),
    InputSpec(
        "annual_licence",
        "Annual licence and maintenance",
        "$/year",
        30_000,
        15_000,
        60_000,
        "Assumption: typical subscription tier; replace with your contract",
    ),
    InputSpec(
        "annual_it_support",
        "Annual IT support (staff time, hosting)",
        "$/year",
        20_000,
        10_000,
        40_000,
        "Assumption: ~0.2 FTE of an integration engineer",
    ),
    InputSpec(
        "cloud_cost_per_study",
        "Cloud inference cost per study",
        "$/study",
        0.0,
        0.0,
        2.0,
        "Cloud inference is priced at $0.50-2.00 per study; 0 when on-premise",
    ),
    InputSpec(
        "radiologist_cost_per_hour",
        "Radiologist cost per hour",
        "$/hour",
        250,
        180,
        350,
        "Assumption: total compensation ~$500k/year over ~2,000 clinical hours",
    ),
    InputSpec(
        "minutes_saved_per_study",
        "Minutes saved per study",
        "min/study",
        1.0,
        0.0,
        3.0,
        "Assumption unless the feed carries read times (then the measured difference)",
    ),
    InputSpec(
        "annual_volume",
        "Studies per year through the model",
        "studies/year",
        20_000,
        15_000,
        25_000,
        "Measured: studies seen by Vigil, annualised",
    ),
    InputSpec(
        "extra_detections_per_year",
        "Extra true findings per year",
        "cases/year",
        0.0,
        0.0,
        0.0,
        "Measured: adjudicated 'AI right' discordant cases, annualised",
    ),
    InputSpec(
        "value_per_detection",
        "Value of an extra true finding",
        "$/case",
        0.0,
        0.0,
        5_000,
        "Assumption: avoided downstream cost per case; 0 unless agreed",
    ),
    InputSpec("horizon_years", "Horizon", "years", 5, 5, 5, "The committee's planning horizon"),
]
SPEC_BY_KEY = {s.key: s for s in INPUT_SPECS}


@dataclass(frozen=True, slots=True)
class RoiInputs:
    upfront_cost: float = 100_000
    annual_licence: float = 30_000
    annual_it_support: float = 20_000
    cloud_cost_per_study: float = 0.0
    radiologist_cost_per_hour: float = 250
    minutes_saved_per_study: float = 1.0
    annual_volume: float = 20_000
    extra_detections_per_year: float = 0.0
    value_per_detection: float = 0.0
    horizon_years: float = 5

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> RoiInputs:
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in (d or {}).items() if k in names and v is not None})


@dataclass(frozen=True, slots=True)
class RoiResult:
    annual_cost: float  # recurring: licence + IT + cloud inference
    annual_inference_cost: float
    annual_time_savings: float  # radiologist time saved, in money
    annual_detection_value: float
    annual_savings: float
    annual_net: float  # savings - recurring cost
    payback_years: float | None  # None: never pays back (net <= 0)
    horizon_net: float  # net over the horizon, upfront included (undiscounted)
    radiologist_hours_saved: float


def compute_roi(i: RoiInputs) -> RoiResult:
    """Annual cost, savings, payback and horizon net for one set of inputs."""
    inference = i.cloud_cost_per_study * i.annual_volume
    annual_cost = i.annual_licence + i.annual_it_support + inference
    hours = i.annual_volume * i.minutes_saved_per_study / 60.0
    time_savings = hours * i.radiologist_cost_per_hour
    detection = i.extra_detections_per_year * i.value_per_detection
    savings = time_savings + detection
    net = savings - annual_cost
    if i.upfront_cost <= 0:
        payback = 0.0 if net >= 0 else None
    else:
        payback = i.upfront_cost / net if net > 0 else None
    horizon_net = net * i.horizon_years - i.upfront_cost
    return RoiResult(
        annual_cost=annual_cost,
        annual_inference_cost=inference,
        annual_time_savings=time_savings,
        annual_detection_value=detection,
        annual_savings=savings,
        annual_net=net,
        payback_years=payback,
        horizon_net=horizon_net,
        radiologist_hours_saved=hours,
    )


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    key: str
    label: str
    low_value: float
    high_value: float
    net_at_low: float  # annual net with this input at its low value, others as given
    net_at_high: float
    payback_at_low: float | None
    payback_at_high: float | None


def sensitivity(
    i: RoiInputs, ranges: dict[str, tuple[float, float]] | None = None
) -> list[SensitivityRow]:
    """One-at-a-time sensitivity: each input at its low and high value (a tornado's rows),
    widest swing in annual net first."""
    rows = []
    for spec in INPUT_SPECS:
        low, high = (ranges or {}).get(spec.key, (spec.low, spec.high))
        if low == high or spec.key == "horizon_years":
            continue
        r_low = compute_roi(replace(i, **{spec.key: low}))
        r_high = compute_roi(replace(i, **{spec.key: high}))
        rows.append(
            SensitivityRow(
                spec.key,
                spec.label,
                low,
                high,
                r_low.annual_net,
                r_high.annual_net,
                r_low.payback_years,
                r_high.payback_years,
            )
        )
    rows.sort(key=lambda r: -abs(r.net_at_high - r.net_at_low))
    return rows


def scenario_range(
    i: RoiInputs, ranges: dict[str, tuple[float, float]] | None = None
) -> tuple[RoiResult, RoiResult]:
    """Pessimistic and optimistic cases: every input at its unfavourable / favourable end."""
    pess, opt = {}, {}
    for row in sensitivity(i, ranges):
        worse_is_low = row.net_at_low <= row.net_at_high
        pess[row.key] = row.low_value if worse_is_low else row.high_value
        opt[row.key] = row.high_value if worse_is_low else row.low_value
    return compute_roi(replace(i, **pess)), compute_roi(replace(i, **opt))


def to_csv(i: RoiInputs, r: RoiResult, rows: list[SensitivityRow]) -> str:
    """The business case as one CSV: inputs (with sources), results, sensitivity rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "item", "value", "unit", "note"])
    for k, v in i.to_dict().items():
        spec = SPEC_BY_KEY[k]
        w.writerow(["input", spec.label, v, spec.unit, spec.source])
    for k, v in asdict(r).items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            v = "never" if k == "payback_years" else ""
        w.writerow(["result", k, v, "years" if k == "payback_years" else "$", ""])
    for s in rows:
        w.writerow(
            [
                "sensitivity",
                s.label,
                f"{s.low_value}..{s.high_value}",
                "annual net $",
                f"{s.net_at_low:.0f}..{s.net_at_high:.0f}",
            ]
        )
    return buf.getvalue()
