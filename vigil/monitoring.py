"""The monitor runner: load the case frame, run every monitor per model, store it, upsert alerts.

Two layers: :func:`evaluate` is pure (frame + model cards in, results + alert candidates out;
the benchmark and tests call it on frames built from the simulator's truth), and
:func:`run_monitors` adds the store: reads the frame, re-scoring rows and AI coverage counts,
writes a MonitorRun and the alerts. The results' JSON shape is documented in monitors/SCHEMA.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from monitors import alerting
from monitors.alerting import AlertCandidate
from monitors.drift import DriftConfig, drift_scan, month_windows
from monitors.frame import SUBGROUP_ATTRIBUTES
from monitors.results import to_jsonable

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the runner needs from a model card (AIModel row)."""

    name: str
    finding: str
    operating_threshold: float = 0.5
    id: int | None = None
    baseline_sensitivity: float | None = None
    baseline_specificity: float | None = None
    baseline_auc: float | None = None
    baseline_ppv: float | None = None
    baseline_n: int | None = None
    baseline_period: str = ""
    target_sensitivity: float | None = None
    target_specificity: float | None = None
    go_live_date: date | None = None
    current_version: str = ""
    card: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Run-wide settings; every false-alarm budget is family-wise per model and monitor."""

    reference_months: int = 2  # reference = the first N calendar months on/after go-live
    alpha: float = 0.01  # performance checks: Bonferroni over windows x metrics
    min_drop: dict[str, float] = field(
        default_factory=lambda: {"sensitivity": 0.05, "specificity": 0.03, "auc": 0.03}
    )  # a month must fall at least this far below the reference to alert
    alert_vs_card: bool = False  # also alert when credibly below the model card's figures
    chart_arl0: float = 5000.0  # control charts: periods between false alarms (per chart)
    threshold_offsets: tuple[float, ...] = (-0.1, -0.05, 0.0, 0.05, 0.1)
    fairness_q: float = 0.01  # BH level of the subgroup-change scans (split over the two)
    fairness_min_effect: float = 0.05  # a subgroup must fall this much further than the rest
    recent_months: int = 3  # subgroup changes: the latest month and the last N months
    coverage_min_drop: float = 0.1  # AI coverage: absolute drop in share to alert
    rolling_weeks: int = 4  # the rolling trend: windows of this many ISO weeks
    intersections: tuple[tuple[str, str], ...] = ()  # fairness scan: pairs of attributes
    drift: DriftConfig = field(default_factory=DriftConfig)


# --- small helpers --------------------------------------------------------------------------


def _month_start(label: str) -> pd.Timestamp:
    return pd.Timestamp(f"{label}-01", tz="UTC")


def reference_windows(months: list[str], go_live: date | None, n: int) -> list[str]:
    """The first ``n`` months with data on or after the go-live month (or the first months)."""
    months = sorted(months)
    if go_live is not None:
        start = f"{go_live.year:04d}-{go_live.month:02d}"
        later = [m for m in months if m >= start]
        months = later or months
    return months[:n]


def _upper_bound(successes: int, n: int, alpha_one_sided: float) -> float:
    """One-sided upper Wilson bound at level alpha (the two-sided interval at 2 alpha)."""
    from monitors.stats import wilson

    return wilson(successes, n, alpha=min(0.999, 2 * alpha_one_sided))[1]


def _floors(info: ModelInfo) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    for metric in ("sensitivity", "specificity"):
        base = getattr(info, f"baseline_{metric}")
        target = getattr(info, f"target_{metric}")
        if base is not None:
            out[metric] = (float(base), "model card baseline")
        elif target is not None:
            out[metric] = (float(target), "model card target")
    if info.baseline_auc is not None:
        out["auc"] = (float(info.baseline_auc), "model card baseline")
    return out


def _ref_estimates(ref_perf: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return ((ref_perf or {}).get("metrics") or {}) if ref_perf else {}


def window_checks(
    trend: list[dict[str, Any]],
    info: ModelInfo,
    post: list[str],
    reference: dict[str, dict[str, Any]],
    config: MonitorConfig,
) -> list[dict[str, Any]]:
    """Per post-reference month: did a metric fall credibly and materially below the reference?

    One-sided z-test of the month against the pooled reference months (two proportions; two
    independent DeLong AUCs), Bonferroni over months x metrics at ``config.alpha``, and a
    minimum drop (``config.min_drop``). With ``alert_vs_card`` the month's one-sided upper
    bound is also compared with the model card's figure.
    """
    metrics = [m for m in ("sensitivity", "specificity", "auc") if m in config.min_drop]
    floors = _floors(info) if config.alert_vs_card else {}
    if not post:
        return []
    m_tests = max(1, len(post) * (len(metrics) + len(floors)))
    level = config.alpha / m_tests
    z_bound = float(sps.norm.ppf(1 - level))
    out = []
    for w in trend:
        if w["period"] not in post:
            continue
        checks = []
        for metric in metrics:
            est, ref = w["metrics"].get(metric) or {}, reference.get(metric) or {}
            if est.get("status") != "ok" or ref.get("status") != "ok":
                continue
            d = est["value"] - ref["value"]
            if metric == "auc":
                se1 = (est["ci_high"] - est["ci_low"]) / (2 * 1.959964)
                se2 = (ref["ci_high"] - ref["ci_low"]) / (2 * 1.959964)
                se = float(np.hypot(se1, se2))
            else:
                x1, n1, x2, n2 = est["numerator"], est["n"], ref["numerator"], ref["n"]
                pooled = (x1 + x2) / (n1 + n2)
                se = float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
            p = float(sps.norm.cdf(d / se)) if se > 0 else (0.0 if d < 0 else 1.0)
            checks.append(
                {
                    "metric": metric,
                    "against": "reference",
                    "value": est["value"],
                    "ci_low": est["ci_low"],
                    "ci_high": est["ci_high"],
                    "n": est["n"],
                    "floor": ref["value"],
                    "floor_source": "reference months after go-live",
                    "difference": d,
                    "p_value": p,
                    "p_threshold": level,
                    "min_drop": config.min_drop[metric],
                    "bound": est["value"] + z_bound * se,
                    "confidence": 1 - level,
                    "below": bool(p < level and -d >= config.min_drop[metric]),
                }
            )
        for metric, (floor, source) in floors.items():
            est = w["metrics"].get(metric) or {}
            if est.get("status") != "ok":
                continue
            if metric == "auc":
                se = (est["ci_high"] - est["ci_low"]) / (2 * 1.959964)
                bound = est["value"] + z_bound * se
            else:
                bound = _upper_bound(int(est["numerator"]), int(est["n"]), level)
            checks.append(
                {
                    "metric": f"{metric}_vs_card",
                    "against": "card",
                    "value": est["value"],
                    "ci_low": est["ci_low"],
                    "ci_high": est["ci_high"],
                    "n": est["n"],
                    "bound": bound,
                    "confidence": 1 - level,
                    "floor": floor,
                    "floor_source": source,
                    "below": bool(bound < floor),
                }
            )
        out.append({"window": w["period"], "subgroup": "", "checks": checks})
    return out


def control_charts(
    trend: list[dict[str, Any]], ref: list[str], arl0: float
) -> list[dict[str, Any]]:
    """Lower CUSUM per metric from the first reference month on. The in-control target is the
    pooled reference months' proportion, taken at its lower 97.5% bound so that the error of
    estimating it does not become a false alarm (the card's figure is compared, not charted:
    acceptance tests are enriched and rarely match production)."""
    from monitors.control_chart import control_chart
    from monitors.stats import wilson

    if not ref:
        return []
    trend = [w for w in trend if w["period"] >= ref[0]]
    labels = [w["period"] for w in trend]
    out = []
    for metric in ("sensitivity", "specificity"):
        x = [int((w["metrics"].get(metric) or {}).get("numerator") or 0) for w in trend]
        n = [int((w["metrics"].get(metric) or {}).get("n") or 0) for w in trend]
        xr, nr = sum(x[: len(ref)]), sum(n[: len(ref)])
        target = wilson(xr, nr)[0] if nr else None
        chart = control_chart(
            x,
            n,
            periods=labels,
            metric=metric,
            target=target if target and 0 < target < 1 else None,
            target_source=(
                f"reference months {ref[0]}..{ref[-1]}: lower 97.5% Wilson bound of "
                f"{xr}/{nr} (the estimated target's own error would inflate false alarms)"
            ),
            kind="cusum",
            direction="lower",
            arl0=arl0,
        ).to_dict()
        alarms = [a for a in chart["alarms"] if a not in set(ref)]
        chart["subgroup"] = ""
        chart["signal"] = bool(alarms)
        chart["first_signal"] = alarms[0] if alarms else None
        chart["window"] = alarms[-1] if alarms else None
        chart["method"] = "cusum"
        last = next((p for p in reversed(chart["points"]) if p["period"] in alarms), None)
        chart["value"] = last["value"] if last else None
        chart["limit"] = chart["parameters"]["h"]
        out.append(chart)
    return out


def _fairness(
    frame: pd.DataFrame,
    info: ModelInfo,
    q: float,
    intersections: tuple[tuple[str, str], ...] = (),
) -> tuple[Any, list[dict[str, Any]]]:
    """The subgroup scan (monitors.fairness) on the post-reference rows, with the requested
    intersections of two attributes (each pair a table "a x b", in the same BH family)."""
    try:
        from monitors import fairness
    except ImportError:
        return None, []
    scan_fn = getattr(fairness, "fairness_scan", None)
    if scan_fn is None:
        return None, []
    attributes = [a for a in SUBGROUP_ATTRIBUTES if a in frame.columns]
    scan = scan_fn(
        frame,
        model=info.name,
        attributes=attributes,
        intersections=[tuple(p) for p in intersections] or None,
        q=q,
    ).to_dict()
    scan["intersections"] = [list(p) for p in intersections]
    return scan, list(scan.get("alerts") or [])


def _rescoring(
    rescored: pd.DataFrame | None, info: ModelInfo, frame: pd.DataFrame
) -> dict[str, Any] | None:
    """Production vs re-run agreement, judged against the limits the model's re-scoring spec
    declares (per case, mean, flip rate); the monitors' defaults when it declares none."""
    from models.rescore import declared_tolerance
    from monitors.rescoring import rescoring_agreement

    if rescored is None or rescored.empty:
        return None
    if "label" not in rescored.columns:  # reference labels give the paired DeLong comparison
        labels = frame[["study_id", "label"]].drop_duplicates("study_id")
        rescored = rescored.merge(labels, on="study_id", how="left")
    limits: dict[str, float] = {}
    if tol := declared_tolerance(info):
        limits = {
            "tolerance": tol["case_abs"],
            "mean_tolerance": tol["mean_abs"],
            "max_flip_rate": tol["flip_rate"],
        }
    return rescoring_agreement(rescored, threshold=info.operating_threshold, **limits).to_dict()


def coverage_rows(
    counts: pd.DataFrame, reference: list[str], post: list[str], *, alpha: float, min_drop: float
) -> list[dict[str, Any]]:
    """AI coverage per site and month: share of eligible studies with an AI result.

    ``counts``: columns site, window, eligible, covered (one model). A month is a drop when the
    share is below the site's reference share by at least ``min_drop`` and a one-sided
    two-proportion z-test gives p < alpha / (sites x months).
    """
    if counts is None or counts.empty or not post:
        return []
    out = []
    sites = sorted(counts["site"].dropna().unique())
    m = max(1, len(sites) * len(post))
    for site in sites:
        c = counts[counts["site"] == site]
        ref = c[c["window"].isin(reference)]
        re, rc = int(ref["eligible"].sum()), int(ref["covered"].sum())
        if re == 0:
            continue
        ref_share = rc / re
        for w in post:
            row = c[c["window"] == w]
            e, cov = int(row["eligible"].sum()), int(row["covered"].sum())
            if e == 0:
                continue
            share = cov / e
            pooled = (rc + cov) / (re + e)
            se = np.sqrt(pooled * (1 - pooled) * (1 / re + 1 / e))
            p = float(sps.norm.sf((ref_share - share) / se)) if se > 0 else 1.0
            out.append(
                {
                    "site": str(site),
                    "window": w,
                    "eligible": e,
                    "covered": cov,
                    "share": share,
                    "ref_share": ref_share,
                    "p_value": p,
                    "p_threshold": alpha / m,
                    "drop": bool(ref_share - share >= min_drop and p < alpha / m),
                }
            )
    return out


# --- the pure core ----------------------------------------------------------------------------


def evaluate_model(
    frame: pd.DataFrame,
    info: ModelInfo,
    *,
    rescored: pd.DataFrame | None = None,
    coverage: pd.DataFrame | None = None,
    config: MonitorConfig | None = None,
) -> tuple[dict[str, Any], list[AlertCandidate], list[dict[str, Any]]]:
    """Every monitor for one model's rows: (ModelResult dict, alert candidates, errors)."""
    from monitors.performance import (
        Baseline,
        performance_summary,
        performance_trend,
        threshold_analysis,
    )

    config = config or MonitorConfig()
    errors: list[dict[str, Any]] = []
    windows = month_windows(frame["exam_at"])
    months = sorted(windows.dropna().unique())
    ref = reference_windows(months, info.go_live_date, config.reference_months)
    post = [m for m in months if m not in set(ref) and (not ref or m > ref[-1])]
    is_post = windows.isin(post).to_numpy(dtype=bool, na_value=False)
    post_frame = frame.loc[is_post]
    is_ref = windows.isin(ref).to_numpy(dtype=bool, na_value=False)
    baseline = Baseline(
        sensitivity=info.baseline_sensitivity,
        specificity=info.baseline_specificity,
        auc=info.baseline_auc,
        ppv=info.baseline_ppv,
        n=info.baseline_n,
    )
    state = frame["label_state"].astype("string")
    result: dict[str, Any] = {
        "model": {
            "id": info.id,
            "name": info.name,
            "finding": info.finding,
            "versions": sorted(str(v) for v in frame["model_version"].dropna().unique()),
            "operating_threshold": info.operating_threshold,
            "baseline": {
                "sensitivity": info.baseline_sensitivity,
                "specificity": info.baseline_specificity,
                "auc": info.baseline_auc,
                "ppv": info.baseline_ppv,
                "n": info.baseline_n,
                "period": info.baseline_period,
            },
            "targets": {
                "sensitivity": info.target_sensitivity,
                "specificity": info.target_specificity,
            },
            "go_live_date": info.go_live_date.isoformat() if info.go_live_date else None,
        },
        "counts": {
            "cases": len(frame),
            "labelled": int(frame["label"].notna().sum()),
            "positive": int((state == "positive").sum()),
            "negative": int((state == "negative").sum()),
            "uncertain": int((state == "uncertain").sum()),
            "pending": int(((state == "pending") | state.isna()).sum()),
        },
        "reference": {
            "windows": ref,
            "from": _month_start(ref[0]).isoformat() if ref else None,
            "to": (_month_start(ref[-1]) + pd.offsets.MonthBegin(1)).isoformat() if ref else None,
            "n": int(is_ref.sum()),
            "how": f"first {config.reference_months} calendar months with data on/after go-live",
        },
        "latest_window": months[-1] if months else None,
        "post_reference_windows": post,
    }
    candidates: list[AlertCandidate] = []

    def guarded(name: str, fn, default=None):
        try:
            return fn()
        except Exception as exc:  # one monitor failing must not lose the others' results
            errors.append({"model": info.name, "monitor": name, "error": repr(exc)})
            return default

    # performance over the post-reference period (or everything when there is none yet)
    scope = post_frame if len(post_frame) else frame
    result["performance"] = guarded(
        "performance",
        lambda: performance_summary(scope, model=info.name, baseline=baseline).to_dict(),
    )
    result["reference_performance"] = guarded(
        "performance",
        lambda: performance_summary(frame.loc[is_ref], model=info.name).to_dict(),
    )
    trend = guarded(
        "performance_trend",
        lambda: [p.to_dict() for p in performance_trend(frame, model=info.name, freq="M")],
        [],
    )
    # the same metrics per ISO week and per rolling window of weeks (reported; the alerts use
    # the months, whose volumes give the tests their power)
    result["trends"] = {
        "week": guarded(
            "performance_trend",
            lambda: [p.to_dict() for p in performance_trend(frame, model=info.name, freq="W")],
            [],
        ),
        "rolling": guarded(
            "performance_trend",
            lambda: [
                p.to_dict()
                for p in performance_trend(
                    frame, model=info.name, freq="W", rolling=config.rolling_weeks
                )
            ],
            [],
        ),
        "rolling_weeks": config.rolling_weeks,
    }
    drift_block = guarded(
        "drift",
        lambda: drift_scan(frame, windows=windows, reference=ref, config=config.drift),
        {"scopes": []},
    )
    drifted = {
        w["window"]: w["drifted_columns"]
        for s in drift_block.get("scopes", [])
        if s["subgroup"] == ""
        for w in s["windows"]
    }
    result["windows"] = [
        {
            "window": p["period"],
            "from": p["start"],
            "to": p["end"],
            "is_reference": p["period"] in ref,
            "n_cases": p["n_results"],
            "n_labelled": p["n_labelled"],
            "metrics": p["metrics"],
            "label_coverage": p["label_coverage"],
            "drift": {
                "drifted": bool(drifted.get(p["period"])),
                "columns": drifted.get(p["period"], []),
            },
        }
        for p in trend
    ]
    checks = window_checks(
        trend, info, post, _ref_estimates(result.get("reference_performance")), config
    )
    result["performance_checks"] = checks
    candidates += alerting.performance_alerts(info.name, checks)
    charts = guarded("control_chart", lambda: control_charts(trend, ref, config.chart_arl0), [])
    result["control_chart"] = charts
    candidates += alerting.control_chart_alerts(info.name, charts)
    thresholds = sorted(
        {
            round(min(1.0, max(0.0, info.operating_threshold + d)), 6)
            for d in config.threshold_offsets
        }
    )
    result["threshold"] = guarded(
        "threshold",
        lambda: [
            t.to_dict() for t in threshold_analysis(scope, model=info.name, thresholds=thresholds)
        ],
        [],
    )
    result["drift"] = drift_block
    candidates += alerting.drift_alerts(info.name, drift_block)
    # subgroups: the fairness scan over the post-reference period shows standing differences
    # (reported, not alerted); alerts come from CHANGES (alerting.widened_gaps), the q budget
    # split over the scopes below
    fairness, _standing = guarded(
        "fairness",
        lambda: _fairness(post_frame, info, config.fairness_q, config.intersections),
        (None, []),
    )
    result["fairness"] = fairness
    window_label = post[-1] if post else (months[-1] if months else "")
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    changes = []
    # (scope, current months, comparison months): the latest month and the recent months
    # against everything since the reference began (more data: a sharper test), and the whole
    # post-reference period against the reference (events older than the recent months)
    since_ref = [m for m in months if ref and m >= ref[0]]
    scopes = []
    if post:
        latest = post[-1:]
        scopes.append(("latest", latest, [m for m in since_ref if m < latest[0]]))
        recent = post[-config.recent_months :]
        if len(recent) > 1:
            scopes.append(("recent", recent, [m for m in since_ref if m < recent[0]]))
        if len(post) > len(recent):
            scopes.append(("post_reference", post, ref))
    for scope_name, scope_windows, before in scopes:
        cur = windows.isin(scope_windows).to_numpy(dtype=bool, na_value=False)
        base = windows.isin(before).to_numpy(dtype=bool, na_value=False)
        rows = guarded(
            "fairness_change",
            lambda cur=cur, base=base: alerting.widened_gaps(
                frame,
                reference=base,
                current=cur,
                attributes=[a for a in SUBGROUP_ATTRIBUTES if a in frame.columns],
                q=config.fairness_q / len(scopes),
                min_effect=config.fairness_min_effect,
            ),
            [],
        )
        changes.append(
            {"scope": scope_name, "windows": scope_windows, "compared_with": before, "rows": rows}
        )
        for r in rows:
            if r["alert"]:
                k = (r["attribute"], r["group"], r["metric"])
                seen.setdefault(k, {**r, "window": window_label, "scope": scope_name})
    result["fairness_changes"] = changes
    candidates += alerting.fairness_alerts(info.name, list(seen.values()))
    agreement = guarded("rescoring", lambda: _rescoring(rescored, info, frame))
    result["rescoring"] = agreement
    if agreement:
        agreement = {**agreement, "window": window_label}
    candidates += alerting.rescoring_alerts(info.name, agreement)
    cov_rows = coverage_rows(
        coverage, ref, post, alpha=config.alpha, min_drop=config.coverage_min_drop
    )
    result["coverage"] = cov_rows
    candidates += alerting.coverage_alerts(info.name, cov_rows)
    return to_jsonable(result), candidates, errors


def evaluate(
    frame: pd.DataFrame,
    models: list[ModelInfo],
    *,
    rescored: dict[str, pd.DataFrame] | None = None,
    coverage: dict[str, pd.DataFrame] | None = None,
    config: MonitorConfig | None = None,
) -> tuple[dict[str, Any], list[AlertCandidate], list[dict[str, Any]]]:
    """Every model in ``models`` over ``frame``: ({name: ModelResult}, candidates, errors)."""
    config = config or MonitorConfig()
    out: dict[str, Any] = {}
    candidates: list[AlertCandidate] = []
    errors: list[dict[str, Any]] = []
    if frame.empty:
        codes = np.array([], dtype=np.int64)
        names: list[str] = []
    else:
        cat = frame["model"].astype("category")
        codes, names = cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]
    for info in models:
        idx = names.index(info.name) if info.name in names else -1
        sub = frame.loc[codes == idx] if idx >= 0 else frame.iloc[0:0]
        if sub.empty:
            out[info.name] = {
                "model": {"name": info.name, "id": info.id},
                "counts": {"cases": 0},
                "note": "no AI results in the period",
            }
            continue
        res, cands, errs = evaluate_model(
            sub,
            info,
            rescored=(rescored or {}).get(info.name),
            coverage=(coverage or {}).get(info.name),
            config=config,
        )
        out[info.name], candidates, errors = res, candidates + cands, errors + errs
    return out, candidates, errors


# --- the store side ---------------------------------------------------------------------------


def load_models(engine: Any, *, model: str | None = None) -> list[ModelInfo]:
    """Model cards from the store (one, when ``model`` names it: NotFoundError otherwise)."""
    from sqlmodel import Session, select

    from vigil.errors import NotFoundError
    from vigil.store.tables import AIModel

    with Session(engine) as s:
        rows = list(s.exec(select(AIModel).order_by(AIModel.name)))
    if model is not None:
        rows = [r for r in rows if r.name == model]
        if not rows:
            with Session(engine) as s:
                names = [m.name for m in s.exec(select(AIModel).order_by(AIModel.name))]
            raise NotFoundError(
                f"no model named {model!r}; known models: {', '.join(names) or 'none'}"
            )
    return [
        ModelInfo(
            id=r.id,
            name=r.name,
            finding=r.finding,
            operating_threshold=r.operating_threshold,
            baseline_sensitivity=r.baseline_sensitivity,
            baseline_specificity=r.baseline_specificity,
            baseline_auc=r.baseline_auc,
            baseline_ppv=r.baseline_ppv,
            baseline_n=r.baseline_n,
            baseline_period=r.baseline_period,
            target_sensitivity=r.target_sensitivity,
            target_specificity=r.target_specificity,
            go_live_date=r.go_live_date,
            current_version=r.current_version,
            card=r.card or {},
        )
        for r in rows
    ]


def load_rescored(engine: Any, models: list[ModelInfo]) -> dict[str, pd.DataFrame]:
    """RescoreResult rows per model name (study_id, production_score, rescore_score, ...)."""
    from sqlalchemy import text

    ids = {m.id: m.name for m in models if m.id is not None}
    if not ids:
        return {}
    with engine.connect() as conn:
        res = conn.execute(
            text(
                "SELECT model_id, study_id, production_score, rescore_score, difference, "
                "call_flip, error FROM rescoreresult"
            )
        )
        df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    out = {}
    for mid, name in ids.items():
        sub = df[df["model_id"] == mid].drop(columns=["model_id"]).reset_index(drop=True)
        if len(sub):
            out[name] = sub
    return out


def load_coverage(
    engine: Any,
    models: list[ModelInfo],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, pd.DataFrame]:
    """Per model: eligible studies (procedures the model has read) and covered ones, per site and
    month. Counted in SQL (GROUP BY), so it costs one pass over the study table."""
    from sqlalchemy import text

    dialect = engine.dialect.name
    exam = "COALESCE(s.exam_started_at, s.exam_ended_at)"
    month = (
        f"strftime('%Y-%m', {exam})"
        if dialect == "sqlite"
        else f"to_char({exam} AT TIME ZONE 'UTC', 'YYYY-MM')"
    )
    where, params = [f"{exam} IS NOT NULL"], {}
    if since is not None:
        where.append(f"{exam} >= :since")
        params["since"] = since if dialect != "sqlite" else since.strftime("%Y-%m-%d %H:%M:%S")
    if until is not None:
        where.append(f"{exam} < :until")
        params["until"] = until if dialect != "sqlite" else until.strftime("%Y-%m-%d %H:%M:%S")
    cond = " AND ".join(where)
    with engine.connect() as conn:
        totals = pd.DataFrame(
            conn.execute(
                text(
                    f"SELECT s.site_code AS site, {month} AS window, s.procedure_code AS proc, "
                    f"COUNT(*) AS n FROM study s WHERE {cond} GROUP BY 1, 2, 3"
                ),
                params,
            ).fetchall(),
            columns=["site", "window", "proc", "n"],
        )
        covered = pd.DataFrame(
            conn.execute(
                text(
                    f"SELECT r.model_id, s.site_code AS site, {month} AS window, "
                    f"s.procedure_code AS proc, COUNT(DISTINCT s.id) AS n FROM airesult r "
                    f"JOIN study s ON s.id = r.study_id WHERE {cond} GROUP BY 1, 2, 3, 4"
                ),
                params,
            ).fetchall(),
            columns=["model_id", "site", "window", "proc", "n"],
        )
    out: dict[str, pd.DataFrame] = {}
    for m in models:
        cov = covered[covered["model_id"] == m.id]
        procs = set(cov["proc"].dropna())
        if not procs:
            continue
        elig = totals[totals["proc"].isin(procs)].groupby(["site", "window"], as_index=False)["n"]
        elig = elig.sum().rename(columns={"n": "eligible"})
        c = cov.groupby(["site", "window"], as_index=False)["n"].sum()
        c = c.rename(columns={"n": "covered"})
        merged = elig.merge(c, on=["site", "window"], how="left").fillna({"covered": 0})
        merged["covered"] = merged["covered"].astype("int64")
        out[m.name] = merged
    return out


def write_evidently_reports(
    frame: pd.DataFrame, results: dict[str, Any], out_dir: Path
) -> list[Path]:
    """Evidently's own HTML drift report per model: reference months vs the latest month."""
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from monitors.drift import drift_columns

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    windows = month_windows(frame["exam_at"])
    for name, res in results.items():
        ref = (res.get("reference") or {}).get("windows") or []
        latest = res.get("latest_window")
        if not ref or not latest or latest in ref:
            continue
        mask = (frame["model"] == name).to_numpy(dtype=bool, na_value=False)
        num, cat = drift_columns(frame)
        cols = [*num, *cat]
        sub = frame.loc[mask, cols].copy()
        w = windows[mask]
        for c in cat:
            sub[c] = sub[c].astype("string").fillna("<missing>").astype(object)
        for c in num:
            sub[c] = pd.to_numeric(sub[c], errors="coerce").astype("float64")
        ref_df, cur_df = sub[w.isin(ref).to_numpy()], sub[(w == latest).to_numpy()]
        # Evidently refuses a column with no value on either side (e.g. a DICOM tag that only
        # some months carry): leave such columns out of its report
        present = [c for c in cols if ref_df[c].notna().any() and cur_df[c].notna().any()]
        num, cat = [c for c in num if c in present], [c for c in cat if c in present]
        if not present:
            continue
        definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
        ref_ds = Dataset.from_pandas(ref_df[present], data_definition=definition)
        cur_ds = Dataset.from_pandas(cur_df[present], data_definition=definition)
        snap = Report([DataDriftPreset()]).run(cur_ds, ref_ds)
        path = out_dir / f"{name}-drift-{latest}.html"
        snap.save_html(str(path))
        written.append(path)
    return written


def run_monitors(
    engine: Any,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    store: bool = True,
    evidently_report_dir: Path | None = None,
    config: MonitorConfig | None = None,
) -> dict[str, Any]:
    """Run every monitor over the store and (``store=True``) save the run and upsert alerts.

    Returns the results object of monitors/SCHEMA.md.
    """
    from sqlmodel import select

    from vigil import __version__
    from vigil.alerts import upsert_alerts
    from vigil.caseframe import load_case_frame
    from vigil.store.db import session_scope
    from vigil.store.tables import Alert, MonitorRun
    from vigil.store.types import utcnow

    started = utcnow()
    t0 = time.perf_counter()
    models = load_models(engine, model=model)
    frame = load_case_frame(engine, since=since, until=until, model=model)
    rescored = load_rescored(engine, models)
    coverage = load_coverage(engine, models, since=since, until=until)
    t1 = time.perf_counter()
    per_model, candidates, errors = evaluate(
        frame, models, rescored=rescored, coverage=coverage, config=config
    )
    t2 = time.perf_counter()
    exam = frame["exam_at"].dropna() if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "run_id": None,
            "started_at": started.isoformat(),
            "finished_at": None,
            "data_from": exam.min().isoformat() if len(exam) else None,
            "data_to": exam.max().isoformat() if len(exam) else None,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "vigil_version": __version__,
            "n_rows": len(frame),
            "models_run": [m.name for m in models],
            "intersections": [list(p) for p in (config or MonitorConfig()).intersections],
            "timings_s": {"load": round(t1 - t0, 3), "monitors": round(t2 - t1, 3)},
        },
        "models": per_model,
        "alerts": [],
        "alert_counts": {"raised": 0, "updated": 0, "reopened": 0, "unchanged": 0},
        "errors": errors,
    }
    if evidently_report_dir is not None:
        paths = write_evidently_reports(frame, per_model, Path(evidently_report_dir))
        results["run"]["evidently_reports"] = [str(p) for p in paths]
    finished = utcnow()
    results["run"]["finished_at"] = finished.isoformat()
    if store:
        with session_scope(engine) as s:
            outcomes = upsert_alerts(s, candidates=candidates, now=finished)
            open_total = len(list(s.exec(select(Alert.id).where(Alert.status == "open"))))
            run = MonitorRun(
                started_at=started,
                finished_at=finished,
                data_from=exam.min().floor("us").to_pydatetime() if len(exam) else None,
                data_to=exam.max().floor("us").to_pydatetime() if len(exam) else None,
                vigil_version=__version__,
            )
            s.add(run)
            s.flush()
            results["run"]["run_id"] = run.id
            results["alerts"] = outcomes
            for o in outcomes:
                results["alert_counts"][o["action"]] = (
                    results["alert_counts"].get(o["action"], 0) + 1
                )
            results["alert_counts"]["open_total"] = open_total
            results["run"]["timings_s"]["alerts"] = round(time.perf_counter() - t2, 3)
            run.results = to_jsonable(results)
            s.add(run)
    else:
        results["alerts"] = [{**c.to_dict(), "action": "candidate"} for c in candidates]
    return to_jsonable(results)


def latest_run(engine: Any) -> dict[str, Any] | None:
    """The results of the most recent stored monitor run, or None."""
    from sqlmodel import Session, col, select

    from vigil.store.tables import MonitorRun

    with Session(engine) as s:
        run = s.exec(select(MonitorRun).order_by(col(MonitorRun.id).desc())).first()
        return run.results if run else None
