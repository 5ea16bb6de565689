"""Overview, performance, drift and fairness pages show exactly what the monitors compute.

Expected values come from calling the monitor functions in the test on the same store (or, for
proportions, from statsmodels' Wilson interval), never from the dashboard's own code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from statsmodels.stats.proportion import proportion_confint
from test_dashboard_helpers import (
    app_as,
    make_store,
    metrics,
    need_results,
    open_page,
    plotly_specs,
)

from monitors.drift import drifted_findings, month_windows
from monitors.performance import (
    Baseline,
    performance_summary,
    performance_trend,
    threshold_analysis,
)
from vigil.caseframe import load_case_frame

LABELS = {
    "flag_rate": "Flag rate",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "fp_per_study": "False positives per study",
    "auc": "AUC",
}


def _shown(e) -> str:
    if e.status == "ok":
        return f"{e.value:.3f}"
    return "insufficient data" if e.status == "insufficient_data" else "undefined"


def _decode(arr):
    """plotly arrays in an AppTest spec: a list, or base64 {'dtype','bdata'} (plotly 6)."""
    if isinstance(arr, dict) and "bdata" in arr:
        import base64

        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"]).tolist()
    return list(arr)


def test_overview_and_performance_equal_the_monitors(engine: Engine) -> None:
    results = need_results(make_store(engine))
    frame = load_case_frame(engine)
    at = open_page(app_as("coe_member"), "overview")
    shown = metrics(at)
    for name, res in results["models"].items():
        card = res["model"]
        post = frame[
            (frame["model"] == name)
            & month_windows(frame["exam_at"])
            .isin(res["post_reference_windows"])
            .fillna(False)
            .to_numpy()
        ]
        s = performance_summary(
            post,
            model=name,
            baseline=Baseline(
                sensitivity=card["baseline"]["sensitivity"],
                specificity=card["baseline"]["specificity"],
                auc=card["baseline"]["auc"],
                ppv=card["baseline"]["ppv"],
                n=card["baseline"]["n"],
            ),
        )
        for metric, label in LABELS.items():
            assert shown[f"{name} · {label}"] == _shown(s.metrics[metric]), (name, metric)
        assert shown[f"{name} · Volume"] == f"{(frame['model'] == name).sum():,}"
        # sensitivity independently: Wilson interval from statsmodels on the same cases
        lab = post[post["label"].notna()]
        pos = lab[lab["label"] == 1]
        k = int(pos["ai_call"].astype(bool).sum())
        lo, hi = proportion_confint(k, len(pos), method="wilson")
        assert s.metrics["sensitivity"].ci_low == pytest.approx(lo)
        assert s.metrics["sensitivity"].ci_high == pytest.approx(hi)
    verdicts = [
        m.value
        for m in at.markdown
        if "ON TARGET" in m.value or "WATCH" in m.value or "ACT" in m.value
    ]
    assert len(verdicts) == len(results["models"])

    # --- performance page: trend, per site, threshold what-if --------------------------
    model = "neurovue-ich"
    at = open_page(app_as("coe_member"), "performance")
    at.selectbox[0].select(model).run()
    at.selectbox[1].select("flag_rate").run()  # enough cases per week at this store size
    spec = plotly_specs(at)[0]
    line = next(t for t in spec["data"] if t.get("mode") == "lines+markers")
    trend = [
        p
        for p in performance_trend(frame, model=model, freq="M")
        if p.metrics["flag_rate"].status == "ok"
    ]
    assert len(trend) >= 5
    assert _decode(line["x"]) == [p.period for p in trend]
    assert _decode(line["y"]) == pytest.approx([p.metrics["flag_rate"].value for p in trend])
    # weekly periods on request (a filter change, no reload)
    at.radio[0].set_value("W").run()
    assert not at.exception
    line = next(t for t in plotly_specs(at)[0]["data"] if t.get("mode") == "lines+markers")
    weekly = [
        p
        for p in performance_trend(frame, model=model, freq="W")
        if p.metrics["flag_rate"].status == "ok"
    ]
    assert len(weekly) > len(trend)
    assert _decode(line["y"]) == pytest.approx([p.metrics["flag_rate"].value for p in weekly])
    # per site: the table equals performance_summary on that site's rows
    sites = next(df.value for df in at.dataframe if "site" in df.value.columns)
    for site, g in frame[frame["model"] == model].groupby("site", observed=True):
        e = performance_summary(g, model=model).metrics["flag_rate"]
        row = sites[sites["site"] == str(site)].iloc[0]
        assert row["n"] == e.n and row["status"] == e.status
        if e.status == "ok":
            assert row["value"] == pytest.approx(e.value)
    # threshold what-if at 0.30
    at.slider[0].set_value(0.30).run()
    tp = threshold_analysis(frame, model=model, thresholds=[0.30])[0]
    m = metrics(at)
    for metric in ("sensitivity", "specificity", "fp_per_study", "flag_rate"):
        e = getattr(tp, metric)
        assert m[
            f"What-if {LABELS.get(metric, 'NPV') if metric != 'flag_rate' else 'Flag rate'}"
        ].startswith(f"{e.value:.3f} (95% CI {e.ci_low:.3f}–{e.ci_high:.3f}, n={e.n})")


def test_drift_and_fairness_equal_the_monitors(engine: Engine) -> None:
    results = need_results(make_store(engine))
    frame = load_case_frame(engine)
    model = "lungsight-nodule"
    at = open_page(app_as("quality_officer"), "drift")
    at.selectbox[0].select(model).run()
    assert not at.exception
    block = results["models"][model]["drift"]
    assert metrics(at)["Drifted inputs (scope x column)"] == str(len(drifted_findings(block)))
    # distributions side by side: scanner manufacturer, all sites, latest month vs reference
    at.selectbox[1].select("scanner_manufacturer").run()
    at.selectbox[2].select("").run()
    window = at.selectbox[3].value
    bars = [t for t in plotly_specs(at)[0]["data"] if t["type"] == "bar"]
    sub = frame[frame["model"] == model]
    months = month_windows(sub["exam_at"])
    ref = (
        sub.loc[
            months.isin(block["reference_windows"]).fillna(False).to_numpy(), "scanner_manufacturer"
        ]
        .astype(str)
        .value_counts(normalize=True)
    )
    cur = (
        sub.loc[(months == window).fillna(False).to_numpy(), "scanner_manufacturer"]
        .astype(str)
        .value_counts(normalize=True)
    )
    x = _decode(bars[0]["x"])
    assert _decode(bars[0]["y"]) == pytest.approx([ref.get(v, 0.0) for v in x])
    assert _decode(bars[1]["y"]) == pytest.approx([cur.get(v, 0.0) for v in x])

    # --- fairness: subgroup rows equal the scan, and Wilson CIs from statsmodels ----------
    at = open_page(app_as("quality_officer"), "fairness")
    at.selectbox[0].select("neurovue-ich").run()
    at.selectbox[1].select("site").run()
    at.selectbox[2].select("specificity").run()
    table = next(df.value for df in at.dataframe if "group" in df.value.columns)
    res = results["models"]["neurovue-ich"]
    scan_rows = [
        r
        for t in res["fairness"]["tables"]
        if t["attribute"] == "site"
        for r in t["rows"]
        if r["metric"] == "specificity"
    ]
    assert sorted(table["group"]) == sorted(r["group"] for r in scan_rows)
    post = frame[
        (frame["model"] == "neurovue-ich")
        & month_windows(frame["exam_at"])
        .isin(res["post_reference_windows"])
        .fillna(False)
        .to_numpy()
    ]
    checked = 0
    for r in scan_rows:
        row = table[table["group"] == r["group"]].iloc[0]
        assert row["n"] == r["estimate"]["n"]
        neg = post[(post["site"].astype(str) == r["group"]) & (post["label"] == 0)]
        assert row["n"] == len(neg)
        if r["estimate"]["status"] == "ok":
            k = int((~neg["ai_call"].astype(bool)).sum())
            lo, hi = proportion_confint(k, len(neg), method="wilson")
            assert row["value"] == pytest.approx(k / len(neg))
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
            assert row["significant"] == r["alert"]
            checked += 1
        else:
            assert row["status"].startswith("insufficient data") or row["status"] == "undefined"
    assert checked >= 2
    assert isinstance(pd.DataFrame(table), pd.DataFrame)
