"""Overview: every deployed model's KPIs with CI and n against baseline and target, a verdict."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.fmt import METRIC_LABELS, est_ci, est_value, fmt_opt
from dashboard.theme import ALERT_COLOUR, VERDICT_COLOURS, colour_for, style
from dashboard.verdict import model_verdict

st.title("Overview")
results = data.latest_results()
if results is None:
    st.info("No monitoring results yet. Run `vigil monitor` after ingesting feeds.")
    st.stop()

run = results.get("run") or {}
st.caption(
    f"Monitor run {run.get('run_id')} finished {str(run.get('finished_at', '?'))[:16]} UTC; "
    "data "
    f"{str(run.get('data_from', '?'))[:10]} to {str(run.get('data_to', '?'))[:10]}, "
    f"{run.get('n_rows', 0):,} cases. Every figure: value, 95% CI, n."
)
open_alerts = data.alerts(status=["open", "acknowledged"])
cards = {m["name"]: m for m in data.models()}
mres = data.model_results(results)
names = list(mres)

ORDER = ["flag_rate", "sensitivity", "specificity", "ppv", "fp_per_study", "auc"]
rows = []
for name, res in mres.items():
    card = cards.get(name, {})
    colour = colour_for(name, names)
    counts = res.get("counts") or {}
    perf = res.get("performance") or {}
    metrics = perf.get("metrics") or {}
    model_alerts = open_alerts[open_alerts["model"] == name].to_dict("records")
    targets = {
        "sensitivity": card.get("target_sensitivity"),
        "specificity": card.get("target_specificity"),
    }
    verdict = model_verdict(res, targets, model_alerts)
    st.markdown(
        f"### <span style='color:{colour}'>■</span> {name}"
        f" <small>({card.get('finding', res.get('model', {}).get('finding', ''))}, "
        f"v{card.get('current_version', '')})</small>",
        unsafe_allow_html=True,
    )
    st.markdown(
        f"<div style='font-size:1.2rem;padding:.4rem .8rem;border-left:.5rem solid "
        f"{VERDICT_COLOURS[verdict.level]}'><b>{verdict.level.upper()}</b>: "
        f"{'; '.join(verdict.reasons)}</div>",
        unsafe_allow_html=True,
    )
    post = res.get("post_reference_windows") or []
    if post:
        st.caption(
            f"KPIs over {post[0]} to {post[-1]} (after the reference months "
            f"{', '.join((res.get('reference') or {}).get('windows') or [])}); volume and "
            "coverage over all data."
        )
    cases = int(counts.get("cases", 0))
    labelled = int(counts.get("labelled", 0))
    cols = st.columns(4) + st.columns(4)
    cols[0].metric(f"{name} · Volume", f"{cases:,}", help="cases (studies) seen in the data")
    cols[1].metric(
        f"{name} · Label coverage",
        f"{labelled / cases:.1%}" if cases else "—",
        help=f"{labelled:,} of {cases:,} cases have a positive/negative reference label",
    )
    baseline = (res.get("model") or {}).get("baseline") or {}
    for col, metric in zip(cols[2:], ORDER, strict=True):
        e = metrics.get(metric)
        col.metric(
            f"{name} · {METRIC_LABELS[metric]}",
            est_value(e),
            help=f"{est_ci(e)}; baseline {fmt_opt(baseline.get(metric))}; "
            f"target {fmt_opt(targets.get(metric))}",
        )
        extra = [est_ci(e)]
        if baseline.get(metric) is not None:
            extra.append(f"baseline {baseline[metric]:.3f}")
        if targets.get(metric) is not None:
            extra.append(f"target {targets[metric]:.3f}")
        col.caption(" · ".join(extra))
    for metric in ORDER:
        e = metrics.get(metric) or {}
        rows.append(
            {
                "model": name,
                "metric": METRIC_LABELS[metric],
                "value": e.get("value"),
                "ci_low": e.get("ci_low"),
                "ci_high": e.get("ci_high"),
                "n": e.get("n"),
                "status": e.get("status", "not computed"),
                "baseline": baseline.get(metric),
                "target": targets.get(metric),
            }
        )
    st.caption(
        f"Open alerts: {len(model_alerts)}. Reference labels: {counts.get('positive', 0):,} "
        f"positive, {counts.get('negative', 0):,} negative, {counts.get('uncertain', 0):,} "
        f"uncertain, {counts.get('pending', 0):,} pending."
    )

st.subheader("Sensitivity and specificity against target")
fig = go.Figure()
for metric, symbol in (("sensitivity", "circle"), ("specificity", "diamond")):
    ok = [r for r in rows if r["metric"] == METRIC_LABELS[metric] and r["status"] == "ok"]
    fig.add_trace(
        go.Scatter(
            x=[r["value"] for r in ok],
            y=[f"{r['model']} · {METRIC_LABELS[metric]}" for r in ok],
            mode="markers",
            name=METRIC_LABELS[metric],
            marker={
                "size": 16,
                "symbol": symbol,
                "color": [colour_for(r["model"], names) for r in ok],
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [r["ci_high"] - r["value"] for r in ok],
                "arrayminus": [r["value"] - r["ci_low"] for r in ok],
            },
        )
    )
    tg = [r for r in rows if r["metric"] == METRIC_LABELS[metric] and r["target"] is not None]
    fig.add_trace(
        go.Scatter(
            x=[r["target"] for r in tg],
            y=[f"{r['model']} · {METRIC_LABELS[metric]}" for r in tg],
            mode="markers",
            name=f"target ({METRIC_LABELS[metric].lower()})",
            marker={"size": 18, "symbol": "line-ns", "line": {"width": 4, "color": ALERT_COLOUR}},
        )
    )
st.plotly_chart(
    style(
        fig,
        x_title="Proportion (0-1) with 95% CI",
        y_title="Model · metric",
        height=120 + 60 * len(rows) // 3,
    ),
    width="stretch",
)

st.subheader("All figures")
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Open alerts")
if open_alerts.empty:
    st.success("No open alerts.")
else:
    st.dataframe(
        open_alerts[["id", "kind", "model", "subgroup", "metric", "severity", "status", "summary"]],
        hide_index=True,
        width="stretch",
    )
