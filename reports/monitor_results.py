"""Run the monitors (pure functions in monitors/) over the pack's frame: one ModelResult-shaped
dict per model (monitors/SCHEMA.md), restricted to what the pack shows for its window.

Why not read the last stored MonitorRun: a run covers whatever window it was started with and may
predate late reads or alert notes; recomputing from the frame ties every number in the pack to
the exported window (`vigil export cases --since --until`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from monitors.results import to_jsonable
from reports.gather import PackInputs
from reports.window import Window


def model_info(model: dict[str, Any]):
    """The runner's ModelInfo from an AIModel row (as a dict)."""
    from dataclasses import fields

    from vigil.monitoring import ModelInfo

    names = {f.name for f in fields(ModelInfo)}
    kw = {k: v for k, v in model.items() if k in names and v is not None}
    kw["card"] = model.get("card") or {}
    return ModelInfo(**kw)


def _in_window(frame: pd.DataFrame, w: Window) -> pd.DataFrame:
    at = frame["exam_at"]
    return frame[(at >= pd.Timestamp(w.start)) & (at < pd.Timestamp(w.end))]


def model_result(
    frame: pd.DataFrame, model: dict[str, Any], window: Window, rescores: pd.DataFrame
) -> dict[str, Any]:
    """One model's results for the pack, from the monitors' public functions with the runner's
    settings (vigil.monitoring.MonitorConfig) and its reference months (the first months on or
    after go-live). Months from go-live to the window's end give the trend, control charts and
    drift; the KPIs, the fairness scan and re-scoring use the window's cases only.

    Why not vigil.monitoring.evaluate_model: it also scans fairness and thresholds over every
    post-reference month, which the pack does not print and which dominates its run time.
    """
    from monitors.drift import drift_scan, month_windows
    from monitors.fairness import fairness_scan
    from monitors.performance import Baseline, performance_summary, performance_trend
    from monitors.rescoring import rescoring_agreement
    from vigil.monitoring import MonitorConfig, control_charts, reference_windows

    config = MonitorConfig()
    info = model_info(model)
    name = info.name
    fm = frame[(frame["model"] == name).to_numpy(dtype=bool, na_value=False)]
    cur = _in_window(fm, window)
    months = month_windows(fm["exam_at"])
    ref = reference_windows(
        sorted(months.dropna().unique()), info.go_live_date, config.reference_months
    )
    baseline = Baseline(
        sensitivity=info.baseline_sensitivity,
        specificity=info.baseline_specificity,
        auc=info.baseline_auc,
        ppv=info.baseline_ppv,
        n=info.baseline_n,
    )
    monthly = performance_trend(fm, model=name, freq="M")
    out: dict[str, Any] = {
        "model": {"name": name, "finding": info.finding},
        "reference": {"windows": ref},
        "performance": to_jsonable(performance_summary(cur, model=name, baseline=baseline)),
        "windows": [
            {
                "window": p.period,
                "n_cases": p.n_results,
                "n_labelled": p.n_labelled,
                "metrics": to_jsonable(p.metrics),
            }
            for p in monthly
        ],
        # the runner's own charts (target: the reference months' lower Wilson bound), so the
        # pack and `vigil monitor` agree
        "control_chart": control_charts([p.to_dict() for p in monthly], ref, config.chart_arl0),
        "drift": drift_scan(fm, windows=months, reference=ref, config=config.drift),
        "fairness": to_jsonable(fairness_scan(cur, model=name, q=config.fairness_q)),
        "rescoring": None,
    }
    if not rescores.empty and "model" in rescores.columns:
        rs = rescores[rescores["model"] == name]
        if not rs.empty:
            agreement = rescoring_agreement(rs, threshold=info.operating_threshold)
            out["rescoring"] = to_jsonable(agreement)
            out["rescoring"]["errors"] = (
                int(rs["error"].notna().sum()) if "error" in rs.columns else 0
            )
    return out


def model_results(inputs: PackInputs) -> dict[str, dict[str, Any]]:
    """Every model with cases in the frame -> its results."""
    from reports.gather import monitor_start

    out: dict[str, dict[str, Any]] = {}
    if inputs.frame.empty:
        return out
    # the frame also holds the days before go-live for the turnaround comparison: not monitored
    start = pd.Timestamp(monitor_start(inputs.window, inputs.models))
    frame = inputs.frame[(inputs.frame["exam_at"] >= start).to_numpy(dtype=bool, na_value=False)]
    present = set(frame["model"].dropna().astype(str).unique())
    for m in inputs.models:
        if m["name"] not in present:
            continue
        out[m["name"]] = model_result(frame, m, inputs.window, inputs.rescores)
    return out
