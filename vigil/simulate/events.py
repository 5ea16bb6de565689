"""Scheduled events a monitor must later find, placed at fixed fractions of the simulated period.

Each event names the monitor kind that should catch it (drift / performance / fairness), so the
manifest doubles as the answer key for the monitors' end-to-end tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vigil.simulate.config import SimulationConfig


@dataclass
class Event:
    id: str
    kind: str  # scanner_replacement / population_shift / model_version_update / subgroup_...
    start: datetime  # midnight UTC of the start day
    models: list[str]  # affected models (the first is the one the event is about)
    site: str | None  # affected site, if any
    subgroup: str | None  # e.g. "age_band=80+", "scanner_model=...", "patient_class=emergency"
    monitor: str  # drift / performance / fairness: the monitor kind that should catch it
    also: list[str]  # other monitor kinds that may legitimately fire
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)  # before/after, filled by the network

    @property
    def start_ts(self) -> int:
        return int(self.start.timestamp())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.date().isoformat()
        d["start_utc"] = self.start.isoformat()
        return d


def _at(config: SimulationConfig, frac: float) -> datetime:
    """Midnight of the day at ``frac`` of the period (at least one day after the start)."""
    days = (config.end_dt - config.start_dt).days
    offset = max(1, min(days - 1, round(days * frac)))
    return config.start_dt + timedelta(days=offset)


def schedule(config: SimulationConfig) -> list[Event]:
    """The four events of a normal run; none with ``--stable``."""
    if config.stable:
        return []
    return [
        Event(
            id="E1",
            kind="population_shift",
            start=_at(config, 0.35),
            models=["neurovue-ich", "lungsight-nodule"],
            site="SCH",
            subgroup="patient_class=emergency",
            monitor="drift",
            also=["performance"],
            description=(
                "South Community Hospital opens a new emergency department wing: its emergency "
                "share of CT rises from 30% to 60%, with more acute findings."
            ),
            params={"emergency_share_before": 0.30, "emergency_share_after": 0.60},
        ),
        Event(
            id="E2",
            kind="subgroup_degradation",
            start=_at(config, 0.45),
            models=["neurovue-ich"],
            site=None,
            subgroup="age_band=80+",
            monitor="fairness",
            also=["performance"],
            description=(
                "neurovue-ich loses sensitivity on patients aged 80+ (atrophy and dense "
                "calcifications make small bleeds less visible to it)."
            ),
            params={"separation_factor": 0.65},
        ),
        Event(
            id="E3",
            kind="scanner_replacement",
            start=_at(config, 0.5),
            models=["neurovue-ich", "lungsight-nodule"],
            site="EMC",
            subgroup="scanner_model=Aquilion ONE PRISM",
            monitor="drift",
            also=["performance"],
            description=(
                "East Medical Center replaces its SIEMENS SOMATOM Definition AS+ by a CANON_MEC "
                "Aquilion ONE PRISM (100 kVp, 0.5 mm): lower finding contrast and scores shifted "
                "upwards for both models; input drift (manufacturer, kVp, slice thickness)."
            ),
            params={"old_scanner": "EMC-CT1", "new_scanner": "EMC-CT3"},
        ),
        Event(
            id="E4",
            kind="model_version_update",
            start=_at(config, 0.6),
            models=["lungsight-nodule"],
            site=None,
            subgroup=None,
            monitor="drift",
            also=["performance"],
            description=(
                "LungSight pushes version 2.4.0: slightly better ranking but recalibrated scores "
                "(higher), so at the unchanged operating threshold of 0.4 the flag rate rises "
                "and specificity falls."
            ),
            params={"old_version": "2.3.1", "new_version": "2.4.0"},
        ),
    ]
