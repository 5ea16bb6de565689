"""Which monitor results become alerts: pure decisions over a model's results (no store, no I/O).

Every alert has a stable ``key`` (kind|model|subgroup|metric) so that a re-run updates the open
alert instead of raising a duplicate. The decisions are deliberately conservative: each one is a
test that already controls its false-alarm rate (Bonferroni-calibrated drift, one-sided CI
bounds at a multiplicity-adjusted level, control-chart signals designed for a stated in-control
run length, Benjamini-Hochberg for subgroup scans), so a stable network raises nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("performance", "drift", "fairness", "rescoring", "coverage")
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class AlertCandidate:
    """What a monitor wants to say; vigil.alerts turns it into a stored Alert (or updates one)."""

    kind: str
    model: str
    subgroup: str  # "" = the whole model, else "attribute=value"
    metric: str
    value: float | None
    threshold: float | None
    summary: str
    severity: str = "warning"
    ci_low: float | None = None
    ci_high: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.model, self.subgroup, self.metric)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = self.key
        return d


def alert_key(kind: str, model: str, subgroup: str, metric: str) -> str:
    return f"{kind}|{model}|{subgroup}|{metric}"


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN -> None


# --- drift ------------------------------------------------------------------------------------


def drift_alerts(model: str, drift_block: dict[str, Any]) -> list[AlertCandidate]:
    """One alert per (scope, column) that drifted in any window after the reference.

    Where one event shows in several scopes, one alert names it: a column that drifted at a
    single site raises the site's alert only; one that drifted at two or more sites in the
    same windows is a network-wide change and raises the whole-model alert only.
    """
    from monitors.drift import drifted_findings

    method = drift_block.get("method", {})
    critical = float(method.get("critical_psi", 0.25))
    rows = drifted_findings(drift_block)
    overall = {r["column"]: set(r["windows"]) for r in rows if not r["subgroup"]}
    sites: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["subgroup"]:
            sites.setdefault(r["column"], []).append(r)
    keep = []
    for r in rows:
        col = r["column"]
        site_rows = sites.get(col, [])
        if not r["subgroup"]:
            if len(site_rows) == 1 and overall[col] <= set(site_rows[0]["windows"]):
                continue  # explained by the one site
            keep.append(r)
        elif len(site_rows) >= 2 and col in overall:
            continue  # network-wide: the whole-model alert says it
        else:
            keep.append(r)
    out = []
    for r in keep:
        latest = r["latest"]
        where = r["subgroup"] or "all sites"
        changes = ", ".join(
            f"{c['value']}: {c['ref_share']:.0%}->{c['cur_share']:.0%}"
            if "ref_share" in c
            else f"{c['value']}: {c['ref']:.3g}->{c['cur']:.3g}"
            for c in latest.get("top_changes", [])[:2]
        )
        ev = latest.get("evidently_psi")
        ev_text = (
            f"; Evidently PSI {ev['value']:.2f} >= {ev['threshold']:.2f}"
            if ev and ev.get("value") is not None
            else ""
        )
        out.append(
            AlertCandidate(
                kind="drift",
                model=model,
                subgroup=r["subgroup"],
                metric=f"psi:{r['column']}",
                value=_num(latest["psi"]),
                threshold=_num(latest["psi_threshold"]),
                severity="critical" if latest["psi"] >= critical else "warning",
                summary=(
                    f"{model}: {r['column']} drifted at {where} in {latest['window']} "
                    f"(PSI {latest['psi']:.2f} >= {latest['psi_threshold']:.2f}, "
                    f"p={latest['p_value']:.1e}{ev_text}; {changes})"
                ),
                evidence={
                    "column": r["column"],
                    "window": latest["window"],
                    "first_window": r["windows"][0],
                    "windows": r["windows"],
                    "p_value": latest["p_value"],
                    "p_threshold": latest["p_threshold"],
                    "n_ref": latest["n_ref"],
                    "n_cur": latest["n_cur"],
                    "distance_name": latest["distance_name"],
                    "distance": latest["distance"],
                    "top_changes": latest.get("top_changes", []),
                    "evidently_psi": ev,  # the confirming Evidently PSI test (value, threshold)
                },
            )
        )
    return out


# --- performance against the model card ------------------------------------------------------


def performance_alerts(model: str, windows: list[dict[str, Any]]) -> list[AlertCandidate]:
    """Alert when a window's metric is credibly below the card's floor.

    ``windows`` items: {"window", "subgroup", "checks": [{"metric", "value", "ci_low",
    "ci_high", "bound", "floor", "n", "below"}]} where ``bound`` is the upper confidence bound
    at the multiplicity-adjusted level and ``below`` = bound < floor (computed by the runner).
    """
    found: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for w in windows:
        for c in w["checks"]:
            if c.get("below"):
                found.setdefault((w.get("subgroup", ""), c["metric"]), []).append((w, c))
    out = []
    for (subgroup, metric), hits in found.items():
        w, c = hits[-1]
        where = subgroup or "all sites"
        out.append(
            AlertCandidate(
                kind="performance",
                model=model,
                subgroup=subgroup,
                metric=metric,
                value=_num(c["value"]),
                ci_low=_num(c["ci_low"]),
                ci_high=_num(c["ci_high"]),
                threshold=_num(c["floor"]),
                severity="critical" if len(hits) > 1 else "warning",
                summary=(
                    f"{model}: {metric} {c['value']:.3f} ({c['ci_low']:.3f}-{c['ci_high']:.3f}, "
                    f"n={c['n']}) at {where} in {w['window']} is below the floor "
                    f"{c['floor']:.3f} ({c.get('floor_source', 'model card')})"
                ),
                evidence={
                    "window": w["window"],
                    "first_window": hits[0][0]["window"],
                    "windows": [h[0]["window"] for h in hits],
                    "n": c["n"],
                    "adjusted_upper_bound": c["bound"],
                    "confidence": c.get("confidence"),
                    "floor_source": c.get("floor_source"),
                },
            )
        )
    return out


def control_chart_alerts(model: str, charts: list[dict[str, Any]]) -> list[AlertCandidate]:
    """A control chart that signalled (``charts`` items: {"metric", "subgroup", "signal",
    "first_signal", "value", "limit", "method", ...}) becomes a performance alert."""
    out = []
    for ch in charts:
        if not ch.get("signal"):
            continue
        subgroup = ch.get("subgroup", "")
        out.append(
            AlertCandidate(
                kind="performance",
                model=model,
                subgroup=subgroup,
                metric=f"{ch.get('method', 'cusum')}:{ch['metric']}",
                value=_num(ch.get("value")),
                threshold=_num(ch.get("limit")),
                severity="warning",
                summary=(
                    f"{model}: {ch.get('method', 'CUSUM').upper()} chart of {ch['metric']} "
                    f"signalled at {subgroup or 'all sites'} (first {ch.get('first_signal')})"
                ),
                evidence={k: v for k, v in ch.items() if k not in ("points",)},
            )
        )
    return out


def fairness_alerts(model: str, rows: list[dict[str, Any]]) -> list[AlertCandidate]:
    """Subgroup rows the fairness scan marked as alerts (BH FDR and a minimum gap already
    applied there): ``rows`` are monitors.results.SubgroupRow dicts."""
    out = []
    for r in rows:
        if not r.get("alert"):
            continue
        subgroup = f"{r['attribute']}={r['group']}"
        est, rest = r.get("estimate") or {}, r.get("rest") or {}
        out.append(
            AlertCandidate(
                kind="fairness",
                model=model,
                subgroup=subgroup,
                metric=r["metric"],
                value=_num(est.get("value")),
                ci_low=_num(est.get("ci_low")),
                ci_high=_num(est.get("ci_high")),
                threshold=_num(rest.get("value")),
                severity="critical" if (_num(r.get("gap")) or 0.0) <= -0.1 else "warning",
                summary=(
                    f"{model}: {r['metric']} for {subgroup} is {_fmt(est.get('value'))} "
                    f"(n={est.get('n')}) vs {_fmt(rest.get('value'))} for the rest "
                    f"(gap {_fmt(r.get('gap'))}, BH-adjusted p={_fmt(r.get('p_adjusted'), '.1e')})"
                ),
                evidence={
                    k: r.get(k)
                    for k in (
                        "gap",
                        "gap_ci_low",
                        "gap_ci_high",
                        "p_value",
                        "p_adjusted",
                        "test",
                        "reason",
                        "rest",
                        "window",
                        "windows",
                        "scope",
                    )
                    if k in r
                },
            )
        )
    return out


def rescoring_alerts(model: str, agreement: dict[str, Any] | None) -> list[AlertCandidate]:
    """Re-scoring that disagrees with production (monitors.results.RescoringAgreement dict; its
    ``disagrees`` and ``reasons`` already apply the tolerance rules)."""
    if not agreement or not agreement.get("disagrees"):
        return []
    flips = agreement.get("call_flips") or {}
    mad = agreement.get("mean_abs_diff") or {}
    reasons = agreement.get("reasons") or []
    return [
        AlertCandidate(
            kind="rescoring",
            model=model,
            subgroup="",
            metric="rescore_agreement",
            value=_num(mad.get("value")),
            ci_low=_num(mad.get("ci_low")),
            ci_high=_num(mad.get("ci_high")),
            threshold=_num(agreement.get("tolerance")),
            severity="critical" if (flips.get("numerator") or 0) > 0 else "warning",
            summary=(
                f"{model}: re-scored cases disagree with production (n={agreement.get('n')}): "
                + "; ".join(str(x) for x in reasons)
            ),
            evidence={
                "n": agreement.get("n"),
                "reasons": reasons,
                "call_flips": flips,
                "share_beyond_tolerance": agreement.get("share_beyond_tolerance"),
                "window": agreement.get("window", ""),
            },
        )
    ]


def coverage_alerts(model: str, rows: list[dict[str, Any]]) -> list[AlertCandidate]:
    """A site whose share of eligible studies with an AI result fell credibly (``rows`` items:
    {"site", "window", "covered", "eligible", "share", "ref_share", "p_value", "p_threshold",
    "drop"} with ``drop`` decided by the runner)."""
    hits: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("drop"):
            hits.setdefault(r["site"], []).append(r)
    out = []
    for site, rs in hits.items():
        r = rs[-1]
        out.append(
            AlertCandidate(
                kind="coverage",
                model=model,
                subgroup=f"site={site}",
                metric="ai_coverage",
                value=_num(r["share"]),
                threshold=_num(r["ref_share"]),
                severity="critical" if r["share"] < 0.5 * r["ref_share"] else "warning",
                summary=(
                    f"{model}: only {r['share']:.0%} of eligible studies at {site} had an AI "
                    f"result in {r['window']} ({r['covered']}/{r['eligible']}), "
                    f"vs {r['ref_share']:.0%} in the reference"
                ),
                evidence={
                    "window": r["window"],
                    "first_window": rs[0]["window"],
                    "windows": [x["window"] for x in rs],
                    **r,
                },
            )
        )
    return out


def _fmt(x: Any, spec: str = ".3f") -> str:
    v = _num(x)
    return "n/a" if v is None else format(v, spec)


# --- subgroup changes: a gap that opened or widened since the reference ------------------------

GAP_METRICS = {  # metric -> (label value that forms the denominator, AI call that is a success)
    "sensitivity": (1, 1),
    "specificity": (0, 0),
}


def widened_gaps(
    frame: Any,
    *,
    reference: Any,
    current: Any,
    attributes: list[str],
    metrics: tuple[str, ...] = ("sensitivity", "specificity"),
    q: float = 0.01,
    min_effect: float = 0.05,
    min_n: int = 20,
) -> list[dict[str, Any]]:
    """Which subgroups lost performance RELATIVE TO THE REST since the reference period.

    A standing difference between groups (present at go-live; the fairness scan reports it) is
    not an alert here: only a change is. For a group g and metric m the test statistic is the
    difference in differences (p_g,cur - p_g,ref) - (p_rest,cur - p_rest,ref), z-tested with
    the four independent binomial variances (one-sided: the group fell behind). Benjamini-
    Hochberg at ``q`` over every group x metric tested, and a minimum effect ``min_effect``.
    ``reference`` / ``current``: boolean row masks of ``frame`` (one model's rows).
    """
    import numpy as np
    from scipy import stats as sps

    from monitors.stats import benjamini_hochberg, wilson_arrays

    y = frame["label"].to_numpy(dtype="float64", na_value=np.nan)
    call = frame["ai_call"].to_numpy(dtype="float64", na_value=np.nan)
    ref = np.asarray(reference, dtype=bool)
    cur = np.asarray(current, dtype=bool)
    tests: list[dict[str, Any]] = []
    for attr in attributes:
        if attr not in frame.columns:
            continue
        cat = frame[attr].astype("category")
        codes = cat.cat.codes.to_numpy().astype(np.int64)
        groups = [str(c) for c in cat.cat.categories]
        k = len(groups)
        if k < 2:
            continue
        for metric in metrics:
            lab, succ = GAP_METRICS[metric]
            den = (y == lab) & ~np.isnan(call) & (codes >= 0)
            ok = den & (call == succ)
            counts = {}
            for name, period in (("ref", ref), ("cur", cur)):
                counts[name] = (
                    np.bincount(codes[den & period], minlength=k)[:k],
                    np.bincount(codes[ok & period], minlength=k)[:k],
                )
            (n_r, x_r), (n_c, x_c) = counts["ref"], counts["cur"]
            for g in range(k):
                ns = [n_r[g], n_c[g], n_r.sum() - n_r[g], n_c.sum() - n_c[g]]
                xs = [x_r[g], x_c[g], x_r.sum() - x_r[g], x_c.sum() - x_c[g]]
                if min(ns) < min_n:
                    continue
                p = [x / n for x, n in zip(xs, ns, strict=True)]
                did = (p[1] - p[0]) - (p[3] - p[2])
                var = sum(pi * (1 - pi) / n for pi, n in zip(p, ns, strict=True))
                # a zero variance (all 0 or all 1) gets the variance of one event in each cell
                var = max(var, sum(0.5 / n**2 for n in ns))
                z = did / np.sqrt(var)
                tests.append(
                    {
                        "attribute": attr,
                        "group": groups[g],
                        "metric": metric,
                        "estimate": {"value": p[1], "x": int(xs[1]), "n": int(ns[1])},
                        "rest": {"value": p[3], "n": int(ns[3])},
                        "reference_value": p[0],
                        "rest_reference_value": p[2],
                        "n_reference": int(ns[0]),
                        "gap": did,
                        "p_value": float(sps.norm.cdf(z)),
                    }
                )
    if not tests:
        return []
    rejected, adjusted = benjamini_hochberg([t["p_value"] for t in tests], q=q)
    lows, highs = wilson_arrays(
        np.array([t["estimate"].pop("x") for t in tests]),
        np.array([t["estimate"]["n"] for t in tests]),
    )
    for t, rej, adj, lo, hi in zip(tests, rejected, adjusted, lows, highs, strict=True):
        t["estimate"].update(ci_low=float(lo), ci_high=float(hi))
        t["p_adjusted"] = float(adj)
        t["alert"] = bool(rej and t["gap"] <= -min_effect)
        t["test"] = "difference-in-differences z (one-sided), BH"
        t["reason"] = (
            f"{t['metric']} of {t['attribute']}={t['group']} moved "
            f"{t['estimate']['value'] - t['reference_value']:+.3f} "
            f"since the reference while the rest moved "
            f"{t['rest']['value'] - t['rest_reference_value']:+.3f} (BH-adjusted p="
            f"{t['p_adjusted']:.2g}; alert needs <= {q} and a relative drop >= {min_effect})"
        )
    return tests
