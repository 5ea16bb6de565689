"""Assemble the committee pack's content: PackInputs + the monitors' results -> PackContent.

Pure: no store, no files, no clock (``generated_at`` is passed in). The per-model numbers are the
monitors' own results (``ModelResult`` dicts, monitors/SCHEMA.md) for the pack's window, so the
pack, the dashboard and ``vigil monitor --json`` agree; this module only selects, compares with
baseline and target, and words the verdicts.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd

from monitors.results import Estimate, Status
from monitors.turnaround import MEASURES, MedianCI, MedianDifference, ModelTimes, model_times
from reports.gather import PackInputs
from reports.pack import (
    AlertCounts,
    AlertEntry,
    ChecklistChange,
    ChecklistRow,
    ControlChart,
    DiscordanceSummary,
    DriftRow,
    FairnessRow,
    InventoryChange,
    Kpi,
    Measure,
    ModelSection,
    PackContent,
    Programme,
    RescoringSummary,
    SeriesPoint,
    TimeRow,
    Trend,
    VolumeRow,
)
from reports.window import Window

KPI_ORDER = [
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("ppv", "PPV"),
    ("npv", "NPV"),
    ("auc", "AUC"),
    ("flag_rate", "Flag rate"),
    ("fp_per_study", "False positives per study"),
]
TREND_METRICS = ("sensitivity", "specificity")
FAIRNESS_METRICS = ("sensitivity", "specificity")  # always printed; others only if significant
SIGNOFF_ROLES = [
    "Chair, AI Center of Excellence",
    "Quality officer",
    "Clinical lead, radiology",
    "Data scientist",
    "Administrator (business case)",
]
VERDICT_RANK = {"on target": 0, "watch": 1, "act": 2}


# --- small helpers -----------------------------------------------------------------------------


def estimate_from(d: dict[str, Any] | Estimate | None, metric: str = "") -> Estimate:
    """An Estimate from its JSON dict (SCHEMA.md), or 'undefined' with n=0 when absent."""
    if isinstance(d, Estimate):
        return d
    if not d:
        return Estimate(metric, None, None, None, 0, Status.UNDEFINED, "")
    return Estimate(
        metric=d.get("metric") or metric,
        value=d.get("value"),
        ci_low=d.get("ci_low"),
        ci_high=d.get("ci_high"),
        n=int(d.get("n") or 0),
        status=Status(d.get("status", "undefined")),
        method=d.get("method", ""),
        numerator=d.get("numerator"),
        min_n=d.get("min_n"),
    )


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _in(ts: Any, w: Window) -> bool:
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return False
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return w.start <= ts < w.end


def window_frame(frame: pd.DataFrame, w: Window) -> pd.DataFrame:
    """The rows whose exam time falls in the window (what `vigil export cases` returns)."""
    if frame.empty:
        return frame
    at = frame["exam_at"]
    return frame[(at >= pd.Timestamp(w.start)) & (at < pd.Timestamp(w.end))]


# --- KPIs and verdicts -------------------------------------------------------------------------


def assess_kpi(
    label: str,
    e: Estimate,
    baseline: float | None,
    target: float | None,
    comparison: dict[str, Any] | None = None,
) -> Kpi:
    """Compare one KPI with its target and baseline: words for people and a level.

    Target: 'act' when the whole 95% CI lies below it, 'watch' when only the point estimate
    does. Baseline: the performance monitor's comparison (difference CI entirely below 0 is a
    significant decline, 'act'); a point estimate under the baseline alone is only noted.
    """
    k = Kpi(label, e, baseline, target)
    if e.status is not Status.OK or e.value is None:
        k.assessment = "insufficient data" if e.status is Status.INSUFFICIENT_DATA else "undefined"
        k.level = "watch" if target is not None else "ok"
        return k
    notes, level = [], "ok"
    if target is not None:
        if e.ci_high is not None and e.ci_high < target:
            notes.append("below target (whole CI below it)")
            level = "act"
        elif e.value < target:
            notes.append("point estimate below target")
            level = "watch"
        else:
            notes.append("meets target")
    if baseline is not None:
        if comparison and comparison.get("below_baseline"):
            p = _num(comparison.get("p_value"))
            notes.append("significant decline vs baseline" + (f" (p={p:.2g})" if p else ""))
            level = "act"
        elif e.value < baseline:
            notes.append("below baseline, not significant")
        else:
            notes.append("at or above baseline")
    k.assessment, k.level = "; ".join(notes), level
    return k


def _model_kpis(
    model: dict[str, Any], metrics: dict[str, Any], comparisons: list[dict[str, Any]]
) -> list[Kpi]:
    by_metric = {c.get("metric"): c for c in comparisons or []}
    out = []
    for key, label in KPI_ORDER:
        if key not in metrics:
            continue
        e = estimate_from(metrics.get(key), key)
        out.append(
            assess_kpi(
                label,
                e,
                _num(model.get(f"baseline_{key}")),
                _num(model.get(f"target_{key}")),
                by_metric.get(key),
            )
        )
    return out


def verdict(
    kpis: list[Kpi],
    counts: AlertCounts,
    alerts: list[AlertEntry],
    drift: list[DriftRow],
    fairness: list[FairnessRow],
    n_labelled: int,
) -> tuple[str, list[str]]:
    """One of on target / watch / act, with the reasons (the executive summary's line)."""
    reasons: list[str] = []
    level = "on target"

    def bump(to: str) -> None:
        nonlocal level
        if VERDICT_RANK[to] > VERDICT_RANK[level]:
            level = to

    for k in kpis:
        if k.level in ("watch", "act") and (k.target is not None or k.baseline is not None):
            e = k.estimate
            shown = (
                f"{e.value:.3f} ({e.ci_low:.3f}-{e.ci_high:.3f}), n={e.n}: {k.assessment}"
                if e.value is not None
                else f"{k.assessment} (n={e.n}, minimum {e.min_n or '-'})"
            )
            goal = (
                f"target {k.target:.3f}" if k.target is not None else f"baseline {k.baseline:.3f}"
            )
            reasons.append(f"{k.label} {shown}; {goal}")
            bump(k.level)
    open_crit = [a for a in alerts if a.severity == "critical" and a.open_at_end]
    if open_crit:
        reasons.append(f"{len(open_crit)} critical alert(s) not resolved by the window's end")
        bump("act")
    elif counts.open_at_end:
        reasons.append(f"{counts.open_at_end} alert(s) open at the end of the window")
        bump("watch")
    drifted = [d.feature for d in drift if d.drifted]
    if drifted:
        reasons.append(f"input drift in {', '.join(sorted(set(drifted)))}")
        bump("watch")
    sig = [f"{r.attribute}={r.group}" for r in fairness if r.significant]
    if sig:
        reasons.append(
            f"significant subgroup gap(s) after FDR: {', '.join(sig[:4])}"
            + (" ..." if len(sig) > 4 else "")
        )
        bump("watch")
    if n_labelled == 0:
        reasons.append("no labelled cases in the window")
        bump("watch")
    if not reasons:
        met = [k.label for k in kpis if k.target is not None and k.level == "ok"]
        reasons.append(
            ("KPIs meet their targets (" + ", ".join(met) + ")") if met else "no KPI off target"
        )
        reasons.append("no alert open")
    return level, reasons


# --- alerts ------------------------------------------------------------------------------------


def alert_entries(alerts: list[dict[str, Any]], w: Window) -> tuple[list[AlertEntry], AlertCounts]:
    """Alerts alive in the window, with what happened to each inside it, and the counts."""
    out, counts = [], AlertCounts()
    for a in alerts:
        e = AlertEntry(
            id=a["id"],
            kind=a.get("kind", ""),
            severity=a.get("severity", ""),
            subgroup=a.get("subgroup") or "",
            metric=a.get("metric") or "",
            summary=a.get("summary") or "",
            status=a.get("status", ""),
            first_seen=a.get("first_seen"),
            acknowledged_at=a.get("acknowledged_at"),
            acknowledged_by=a.get("acknowledged_by"),
            acknowledge_note=a.get("acknowledge_note"),
            resolved_at=a.get("resolved_at"),
            resolved_by=a.get("resolved_by"),
            resolve_note=a.get("resolve_note"),
            opened_in_period=_in(a.get("first_seen"), w),
            acknowledged_in_period=_in(a.get("acknowledged_at"), w),
            resolved_in_period=_in(a.get("resolved_at"), w),
        )
        counts.opened += e.opened_in_period
        counts.acknowledged += e.acknowledged_in_period
        counts.resolved += e.resolved_in_period
        e.open_at_end = not (e.resolved_at is not None and pd.Timestamp(e.resolved_at) < w.end)
        counts.open_at_end += e.open_at_end
        out.append(e)
    return out, counts


# --- per-model monitor results -------------------------------------------------------------------


def _window_result(result: dict[str, Any], period: str) -> dict[str, Any] | None:
    return next((wr for wr in result.get("windows") or [] if wr.get("window") == period), None)


def trends(result: dict[str, Any], model: dict[str, Any], period: str, months: int) -> list[Trend]:
    """Monthly sensitivity/specificity of the last ``months`` windows up to the period."""
    wins = [wr for wr in result.get("windows") or [] if wr.get("window", "") <= period]
    wins = wins[-months:]
    out = []
    for m in TREND_METRICS:
        pts = [
            SeriesPoint(wr["window"], estimate_from((wr.get("metrics") or {}).get(m), m))
            for wr in wins
        ]
        out.append(Trend(m, pts, _num(model.get(f"baseline_{m}")), _num(model.get(f"target_{m}"))))
    return out


def shown_fairness(rows: list[FairnessRow]) -> tuple[list[FairnessRow], int]:
    """Rows the pack prints: sensitivity and specificity of every group, and any other metric
    whose gap is significant. Returns them and how many were left to the dashboard/export."""
    keep = [r for r in rows if r.metric in FAIRNESS_METRICS or r.significant]
    return keep, len(rows) - len(keep)


def fairness_rows(block: Any) -> tuple[list[FairnessRow], str]:
    """Subgroup rows of the fairness scan (FairnessScan dict: tables -> SubgroupRow)."""
    if not block:
        return [], "No fairness analysis for this window."
    q = _num(block.get("q")) or 0.05
    rows = []
    for table in block.get("tables") or []:
        for r in table.get("rows") or []:
            e = estimate_from(r.get("estimate"), r.get("metric", ""))
            p_adj = _num(r.get("p_adjusted"))
            rows.append(
                FairnessRow(
                    attribute=str(r.get("attribute", "")),
                    group=str(r.get("group", "")),
                    n=e.n,
                    metric=str(r.get("metric", e.metric)),
                    estimate=e,
                    gap=_num(r.get("gap")),
                    p_value=_num(r.get("p_value")),
                    q_value=p_adj,
                    significant=p_adj is not None and p_adj <= q,
                    reference="rest of the model's cases",
                )
            )
    note = (
        f"Gap = group minus the rest of the model's cases. Significance: Benjamini-Hochberg FDR "
        f"at q={q:g} over {block.get('n_tests', len(rows))} tests; an alert also needs a gap of "
        f"at least {_num(block.get('min_effect')) or 0:.2f}. Groups below n="
        f"{block.get('min_n', '')} show 'insufficient data'."
    )
    return rows, note


def drift_rows(block: dict[str, Any] | None, period: str) -> tuple[list[DriftRow], str]:
    """The all-sites drift tests of the period's window (DriftBlock), plus drifted sites."""
    if not block:
        return [], "No drift analysis for this window."
    rows, site_hits = [], []
    for scope in block.get("scopes") or []:
        for win in scope.get("windows") or []:
            if win.get("window") != period:
                continue
            for c in win.get("columns") or []:
                if scope.get("subgroup"):
                    if c.get("drifted"):
                        site_hits.append(f"{scope['subgroup']}: {c.get('column')}")
                    continue
                rows.append(
                    DriftRow(
                        feature=str(c.get("column")),
                        test=str(c.get("test", "")),
                        statistic=_num(c.get("p_value")),
                        effect=_num(c.get("psi")),
                        threshold=(
                            f"p < {_num(c.get('p_threshold')) or 0:.2g} and "
                            f"PSI ≥ {_num(c.get('psi_threshold')) or 0:.3f}"
                        ),
                        drifted=bool(c.get("drifted")),
                    )
                )
    method = block.get("method") or {}
    note = str(method.get("description", ""))
    if site_hits:
        note = f"Drift at site level: {'; '.join(site_hits)}. " + note
    return rows, note


def rescoring_summary(block: dict[str, Any] | None) -> RescoringSummary | None:
    """The re-scoring monitor's agreement (RescoringAgreement dict) for the window's cases."""
    if not block:
        return None
    flips = estimate_from(block.get("call_flips"), "call_flips")
    agree = None
    if flips.value is not None:
        agree = Estimate(
            "call_agreement",
            1 - flips.value,
            1 - (flips.ci_high or 0),
            1 - (flips.ci_low or 0),
            flips.n,
            flips.status,
            flips.method,
            None if flips.numerator is None else flips.n - flips.numerator,
            flips.min_n,
        )
    elif flips.n:
        agree = Estimate("call_agreement", None, None, None, flips.n, flips.status, flips.method)
    mad = estimate_from(block.get("mean_abs_diff"), "mean_abs_diff")
    reasons = block.get("reasons") or []
    verdict = "DISAGREES with production" if block.get("disagrees") else "agrees with production"
    return RescoringSummary(
        n=int(block.get("n") or 0),
        agreement=agree,
        mean_abs_difference=mad.value,
        call_flips=int(flips.numerator or 0),
        errors=int(block.get("errors") or 0),
        note=f"Re-scoring {verdict}"
        + (f": {'; '.join(reasons)}" if reasons else "")
        + f". Tolerance {_num(block.get('tolerance')) or 0:g} on the score.",
    )


def discordance(cases: pd.DataFrame) -> DiscordanceSummary:
    """AI call vs reference label, and adjudications (label_source 'adjudication')."""
    lab = cases[cases["label"].notna()]
    call = lab["ai_call"].astype("boolean").fillna(False).astype(bool)
    y = lab["label"].astype(int).astype(bool)
    adj = lab["label_source"].astype("string") == "adjudication"
    disc = call != y
    return DiscordanceSummary(
        labelled=len(lab),
        false_positives=int((call & ~y).sum()),
        false_negatives=int((~call & y).sum()),
        adjudicated=int(adj.sum()),
        adjudicated_agree_ai=int((adj & ~disc).sum()),
        adjudicated_agree_report=int((adj & disc).sum()),
        awaiting_review=int((disc & ~adj).sum()),
    )


def control_charts(block: Any, model: str) -> list[ControlChart]:
    """The control chart monitor's result(s) (ControlChart dicts) as drawable series."""
    if not block:
        return []
    out = []
    for c in block if isinstance(block, list) else [block]:
        pts = c.get("points") or []
        if not pts:
            continue
        par = c.get("parameters") or {}
        kind = str(par.get("kind", "")).upper()
        stat = f"{kind} ({par.get('direction', '')})".strip()
        alarms = ", ".join(c.get("alarms") or []) or "none"
        note = f"{c.get('metric', '')}: {c.get('description', '')} Signals: {alarms}."
        out.append(
            ControlChart(
                title=f"{model}: {stat} on {c.get('metric', '')}",
                statistic=f"{c.get('metric', '')} {stat}".strip(),
                x=[str(p.get("period")) for p in pts],
                values=[_num(p.get("statistic")) for p in pts],
                upper=[_num(p.get("upper_limit")) for p in pts],
                lower=[_num(p.get("lower_limit")) for p in pts],
                signals=[i for i, p in enumerate(pts) if p.get("alarm")],
                note=note.strip(),
            )
        )
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    f = _num(v)
    return "—" if f is None else f"{f:.{digits}f}"


def model_section(
    model: dict[str, Any],
    result: dict[str, Any],
    inputs: PackInputs,
    cases: pd.DataFrame,
    trend_months: int,
) -> ModelSection:
    w = inputs.window
    wr = _window_result(result, w.period) or {}
    perf = result.get("performance") or {}
    kpis = _model_kpis(
        model, perf.get("metrics") or wr.get("metrics") or {}, perf.get("vs_baseline") or []
    )
    alerts, counts = alert_entries([a for a in inputs.alerts if a.get("model") == model["name"]], w)
    fair_all, fair_note = fairness_rows(result.get("fairness"))
    fair, left_out = shown_fairness(fair_all)
    if left_out:
        fair_note += (
            f" {left_out} further rows (other metrics, no significant gap) are in the dashboard "
            "and `vigil monitor --json`."
        )
    drift, drift_note = drift_rows(result.get("drift"), w.period)
    n_lab = int(cases["label"].notna().sum())
    level, reasons = verdict(kpis, counts, alerts, drift, fair, n_lab)
    card = {
        "vendor": model.get("vendor", ""),
        "product": model.get("product", ""),
        "finding": model.get("finding", ""),
        "threshold": model.get("operating_threshold"),
        "status": model.get("status", ""),
        "owner": model.get("owner", ""),
        "baseline_period": model.get("baseline_period", ""),
        "baseline_n": model.get("baseline_n"),
    }
    versions = sorted(cases["model_version"].dropna().astype(str).unique().tolist())
    return ModelSection(
        name=model["name"],
        card=card,
        verdict=level,
        verdict_reasons=reasons,
        n_cases=len(cases),
        n_labelled=n_lab,
        kpis=kpis,
        trends=trends(result, model, w.period, trend_months),
        control_charts=control_charts(result.get("control_chart"), model["name"]),
        alerts=alerts,
        alert_counts=counts,
        fairness=fair,
        fairness_note=fair_note,
        drift=drift,
        drift_note=drift_note,
        rescoring=rescoring_summary(result.get("rescoring")),
        discordance=discordance(cases),
        versions_seen=versions,
    )


# --- programme -------------------------------------------------------------------------------


def volume(cases: pd.DataFrame) -> tuple[list[VolumeRow], list[tuple[str, int]]]:
    rows = []
    if not cases.empty:
        g = cases.assign(
            flag=cases["ai_call"].astype("boolean").fillna(False).astype(int),
            lab=cases["label"].notna().astype(int),
        ).groupby(["site", "model"], observed=True)
        for (site, model), part in g:
            rows.append(
                VolumeRow(
                    str(site),
                    str(model),
                    part["study_id"].nunique(),
                    int(part["flag"].sum()),
                    int(part["lab"].sum()),
                )
            )
    weekly: list[tuple[str, int]] = []
    if not cases.empty:
        studies = cases.drop_duplicates("study_id")
        wk = studies["exam_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("W-SUN")
        for p, n in studies.groupby(wk).size().sort_index().items():
            weekly.append((f"wk {p.start_time:%m-%d}", int(n)))
    return rows, weekly


BEFORE_GO_LIVE_DAYS = 90  # "before go-live": this many days before the model went live


def _median_row(model: str, measure: str, m: MedianCI, detail: str) -> TimeRow:
    if m.status is Status.OK:
        return TimeRow(
            model,
            measure,
            m.group,
            f"{m.median:.1f}",
            f"{m.ci_low:.1f}–{m.ci_high:.1f}",
            str(m.n),
            "measured",
            detail,
        )
    words = "insufficient data" if m.status is Status.INSUFFICIENT_DATA else "no data"
    if m.status is Status.INSUFFICIENT_DATA:
        detail = f"fewer than {m.min_n} studies; {detail}".rstrip("; ")
    return TimeRow(model, measure, m.group, words, "", str(m.n), "measured", detail)


def diff_digits(d: MedianDifference) -> int:
    """Decimals of a difference: two when its CI lies within ±1 minute, so that a CI shown as
    "+0.0 to +0.1" cannot be read as including 0 when it does not."""
    return 2 if max(abs(d.ci_low), abs(d.ci_high)) < 1 else 1


def _difference_row(model: str, measure: str, d: MedianDifference, label: str) -> TimeRow:
    if d.status is not Status.OK:
        return TimeRow(
            model,
            measure,
            label,
            "not estimable",
            "",
            "",
            "measured",
            "a group has too few studies",
        )
    note = "CI excludes 0" if d.significant else "CI includes 0"
    k = diff_digits(d)
    return TimeRow(
        model,
        measure,
        label,
        f"{d.difference:+.{k}f}",
        f"{d.ci_low:+.{k}f} to {d.ci_high:+.{k}f}",
        "",
        "measured",
        f"difference of medians; {note}",
    )


def time_rows(r: ModelTimes, period: str) -> list[TimeRow]:
    """The pack's rows for one model and measure (monitors.turnaround's result)."""
    name = MEASURES[r.measure]
    rows: list[TimeRow] = []
    if r.go_live_change is not None:
        gl = r.go_live.isoformat() if r.go_live else ""
        c = r.go_live_change
        rows.append(_median_row(r.model, name, c.a, f"{BEFORE_GO_LIVE_DAYS} days before {gl}"))
        rows.append(_median_row(r.model, name, c.b, f"{period}, exams on/after {gl}"))
        rows.append(_difference_row(r.model, name, c, "after − before"))
    else:
        rows.append(
            TimeRow(
                r.model,
                name,
                "go-live",
                "no date",
                "",
                "",
                "measured",
                "no go-live date on the model card: no before/after",
            )
        )
    f = r.flag_effect
    rows.append(_median_row(r.model, name, f.b, f"{period}, after go-live"))
    rows.append(_median_row(r.model, name, f.a, f"{period}, after go-live"))
    rows.append(_difference_row(r.model, name, f, "flagged − not flagged"))
    return rows


def turnaround_and_read(
    frame: pd.DataFrame, models: list[dict[str, Any]], w: Window, roi_stored: dict | None
) -> tuple[list[TimeRow], str]:
    """Per model: turnaround (exam to first report) before vs after go-live and AI-flagged vs
    not, then read time only where the feed carries OBR-32 times; the assumed read-time saving
    of the ROI inputs is marked ASSUMED."""
    from dashboard.roi import SPEC_BY_KEY, RoiInputs

    rows: list[TimeRow] = []
    unfed: list[str] = []
    for m in models:
        name = m["name"]
        kw = dict(since=w.start, until=w.end, before_days=BEFORE_GO_LIVE_DAYS)
        ta = model_times(frame, name, m.get("go_live_date"), "turnaround_min", **kw)
        if ta.n_cases == 0:
            continue
        rows += time_rows(ta, w.period)
        rd = model_times(frame, name, m.get("go_live_date"), "read_min", **kw)
        if rd.n_measured:
            rows += [
                replace(
                    x,
                    detail=f"{x.detail}; {rd.n_measured} of {rd.n_cases} studies "
                    "carry OBR-32 read times",
                )
                if x.group in ("before go-live", "after go-live")
                else x
                for x in time_rows(rd, w.period)
            ]
        else:
            unfed.append(name)
            rows.append(
                TimeRow(
                    name,
                    "read time",
                    "—",
                    "not fed",
                    "",
                    "0",
                    "measured",
                    "no feed carries OBR-32 read times for these studies",
                )
            )
    if rows:
        inputs = RoiInputs.from_dict(roi_stored)
        src = "stored ROI inputs" if roi_stored else "ROI defaults"
        rows.append(
            TimeRow(
                "all models",
                "read-time saving",
                "per study",
                f"{inputs.minutes_saved_per_study:g}",
                "",
                "",
                "assumed",
                f"{src}: {SPEC_BY_KEY['minutes_saved_per_study'].source}",
            )
        )
    note = (
        "Medians in minutes with exact order-statistic 95% CIs (monitors.turnaround, as on the "
        "dashboard); differences with a normal-approximation CI from the two medians' "
        f"order-statistic standard errors. Before go-live: {BEFORE_GO_LIVE_DAYS} days before the "
        f"model's go-live date; after go-live and AI-flagged vs not: {w.label}. Turnaround = exam "
        "to first report. MEASURED figures come from the feeds; ASSUMED ones from the ROI inputs."
    )
    if unfed:
        note += f" Read time is not fed for {', '.join(unfed)}: any read-time saving is assumed."
    return rows, note


def roi_snapshot(
    cases: pd.DataFrame, stored: dict[str, Any] | None, w: Window
) -> tuple[list[Measure], str]:
    """The dashboard's ROI calculation (dashboard.roi) with the window's measured volume."""
    from dashboard.roi import SPEC_BY_KEY, RoiInputs, compute_roi

    inputs = RoiInputs.from_dict(stored)
    studies = cases["study_id"].nunique() if not cases.empty else 0
    days = (w.end - w.start).days
    annual = studies * 365.0 / days
    inputs = RoiInputs.from_dict({**inputs.to_dict(), "annual_volume": annual})
    r = compute_roi(inputs)
    src = "stored ROI inputs (dashboard)" if stored else "defaults (no ROI inputs saved yet)"

    def money(v: float) -> str:
        return f"-${-v:,.0f}" if v < 0 else f"${v:,.0f}"

    rows = [
        Measure(
            "Studies per year (window annualised)",
            f"{annual:,.0f}",
            "measured",
            f"{studies} studies in {days} days",
        ),
        Measure(
            "Minutes saved per study",
            f"{inputs.minutes_saved_per_study:g}",
            "assumed",
            SPEC_BY_KEY["minutes_saved_per_study"].source,
        ),
        Measure(
            "Radiologist cost per hour", money(inputs.radiologist_cost_per_hour), "assumed", src
        ),
        Measure(
            "Annual recurring cost",
            money(r.annual_cost),
            "assumed",
            "licence + IT support + inference",
        ),
        Measure(
            "Annual savings",
            money(r.annual_savings),
            "assumed",
            f"{r.radiologist_hours_saved:,.0f} radiologist hours",
        ),
        Measure("Annual net", money(r.annual_net), "assumed", "savings minus recurring cost"),
        Measure(
            "Payback",
            "never at these inputs" if r.payback_years is None else f"{r.payback_years:.1f} years",
            "assumed",
            f"upfront {money(inputs.upfront_cost)}",
        ),
        Measure(
            f"Net over {inputs.horizon_years:g} years",
            money(r.horizon_net),
            "assumed",
            "undiscounted, upfront included",
        ),
    ]
    note = (
        f"ROI from {src}; every figure built on an assumption is marked ASSUMED. "
        "Volume is measured from the feeds in this window."
    )
    return rows, note


def checklist(
    inputs: PackInputs,
) -> tuple[list[ChecklistRow], dict[str, int], list[ChecklistChange]]:
    changed = {e["item_id"] for e in inputs.checklist_events}
    rows = [
        ChecklistRow(
            scope=c["scope"],
            item=c.get("title") or c["item_key"],
            status=c.get("status", ""),
            owner=c.get("owner", ""),
            updated_at=c.get("updated_at"),
            changed_in_period=c["id"] in changed,
        )
        for c in inputs.checklist
    ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    changes = [
        ChecklistChange(
            at=e.get("at"),
            scope=e["scope"],
            item=e["item"],
            status=e.get("status", ""),
            by=e.get("by", ""),
            note=e.get("note", ""),
        )
        for e in inputs.checklist_events
    ]
    return rows, counts, changes


def inventory(inputs: PackInputs) -> tuple[list[dict[str, Any]], list[InventoryChange]]:
    w = inputs.window
    inv = [
        {
            k: m.get(k)
            for k in (
                "name",
                "vendor",
                "product",
                "finding",
                "current_version",
                "status",
                "clearance_id",
                "go_live_date",
                "owner",
            )
        }
        for m in inputs.models
    ]
    changes = [
        InventoryChange(
            at=v.get("first_seen_at"),
            model=v["model"],
            version=v.get("version", ""),
            by=v.get("changed_by", ""),
            note=v.get("note", ""),
        )
        for v in sorted(
            inputs.model_versions,
            key=lambda v: (v.get("first_seen_at") is None, v.get("first_seen_at")),
        )
        if _in(v.get("first_seen_at"), w)
    ]
    return inv, changes


# --- the whole pack --------------------------------------------------------------------------


def build_pack(
    inputs: PackInputs,
    results: dict[str, dict[str, Any]],
    *,
    generated_at: datetime,
    vigil_version: str,
    trend_months: int = 6,
) -> PackContent:
    """The pack for ``inputs.window``: ``results`` maps model name -> ModelResult dict."""
    w = inputs.window
    cases = window_frame(inputs.frame, w)
    sections = []
    for m in inputs.models:
        mc = cases[cases["model"].astype("string") == m["name"]] if not cases.empty else cases
        if mc.empty and m["name"] not in results:
            continue
        sections.append(model_section(m, results.get(m["name"], {}), inputs, mc, trend_months))
    vol, weekly = volume(cases)
    times, times_note = turnaround_and_read(inputs.frame, inputs.models, w, inputs.roi_inputs)
    roi, roi_note = roi_snapshot(cases, inputs.roi_inputs, w)
    cl, cl_counts, cl_changes = checklist(inputs)
    inv, inv_changes = inventory(inputs)
    since, until = w.iso()
    export = f"vigil export cases --since {since} --until {until} --out cases-{w.period}.csv"
    if inputs.model_filter:
        export += f" --model {inputs.model_filter}"
    sites = sorted({str(s) for s in cases["site"].dropna().unique()}) if not cases.empty else []
    return PackContent(
        title="Vigil committee pack",
        period=w.period,
        period_label=w.label,
        window_start=w.start,
        window_end=w.end,
        generated_at=generated_at,
        vigil_version=vigil_version,
        sites=[f"{s} ({inputs.sites[s]})" if inputs.sites.get(s) else s for s in sites],
        models=[s.name for s in sections],
        model_filter=inputs.model_filter,
        n_cases=len(cases),
        export_command=export,
        summary=[(s.name, s.verdict, s.verdict_reasons) for s in sections],
        sections=sections,
        programme=Programme(
            volume=vol,
            volume_by_week=weekly,
            times=times,
            times_note=times_note,
            roi=roi,
            roi_note=roi_note,
            checklist=cl,
            checklist_counts=cl_counts,
            checklist_changes=cl_changes,
            inventory=inv,
            inventory_changes=inv_changes,
        ),
        signoff_roles=SIGNOFF_ROLES,
        notes=list(inputs.notes),
    )
