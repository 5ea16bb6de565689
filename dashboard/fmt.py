"""Formatting of Estimate dicts for pages: a number never without its CI and n."""

from __future__ import annotations

from typing import Any

METRIC_LABELS = {
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "flag_rate": "Flag rate",
    "fp_per_study": "False positives per study",
    "auc": "AUC",
}


def est_value(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e:
        return "—"
    if e.get("status") == "ok" and e.get("value") is not None:
        return f"{e['value']:.{digits}f}"
    return "insufficient data" if e.get("status") == "insufficient_data" else "undefined"


def est_ci(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e:
        return ""
    if e.get("status") == "ok" and e.get("ci_low") is not None:
        return f"95% CI {e['ci_low']:.{digits}f}–{e['ci_high']:.{digits}f}, n={e['n']}"
    return f"n={e.get('n', 0)}"


def est_text(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e:
        return "—"
    v = est_value(e, digits)
    return f"{v} ({est_ci(e, digits)})"


def fmt_opt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"
