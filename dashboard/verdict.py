"""One line per model a committee can read at a glance: on target / watch / act, and why.

Pure function over one ModelResult (monitors/SCHEMA.md) and the model's open alerts, so the
committee pack can say exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TARGET_METRICS = ("sensitivity", "specificity")


@dataclass(frozen=True, slots=True)
class Verdict:
    level: str  # "on target" / "watch" / "act"
    reasons: list[str]

    @property
    def line(self) -> str:
        return f"{self.level.upper()}: " + "; ".join(self.reasons)


def _est(block: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    return ((block or {}).get("metrics") or {}).get(metric)


def model_verdict(
    result: dict[str, Any], targets: dict[str, float | None], open_alerts: list[dict[str, Any]]
) -> Verdict:
    """Act when a target is missed beyond doubt (whole CI below), performance fell below its
    baseline, or a critical alert is open; watch when the point estimate misses a target, data
    are insufficient, or warnings are open; otherwise on target."""
    act: list[str] = []
    watch: list[str] = []
    perf = result.get("performance") or {}
    for metric in TARGET_METRICS:
        e = _est(perf, metric)
        target = targets.get(metric)
        if e is None:
            continue
        if e.get("status") != "ok":
            watch.append(f"{metric} {str(e.get('status')).replace('_', ' ')} (n={e.get('n')})")
            continue
        if target is None:
            continue
        if e["ci_high"] < target:
            act.append(
                f"{metric} {e['value']:.2f} (CI {e['ci_low']:.2f}-{e['ci_high']:.2f}) "
                f"below target {target:.2f}"
            )
        elif e["value"] < target:
            watch.append(f"{metric} {e['value']:.2f} under target {target:.2f} (CI includes it)")
    for vb in perf.get("vs_baseline") or []:
        if vb.get("below_baseline"):
            act.append(
                f"{vb['metric']} below baseline {vb['baseline']:.2f} "
                f"(now {vb['value']:.2f}, CI to {vb['ci_high']:.2f})"
            )
    crit = [a for a in open_alerts if a.get("severity") == "critical"]
    warn = [a for a in open_alerts if a.get("severity") != "critical"]
    if crit:
        act.append(f"{len(crit)} critical alert{'s' if len(crit) > 1 else ''} open")
    if warn:
        kinds = sorted({str(a.get("kind")) for a in warn})
        watch.append(f"{len(warn)} open alert{'s' if len(warn) > 1 else ''} ({', '.join(kinds)})")
    if act:
        return Verdict("act", act + watch)
    if watch:
        return Verdict("watch", watch)
    return Verdict("on target", ["sensitivity and specificity meet targets; no open alerts"])
