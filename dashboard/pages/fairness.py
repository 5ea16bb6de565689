"""Fairness: per attribute, each subgroup's metric with n, CI, gap to the rest and its
FDR-adjusted significance (from the last monitor run); fairness alerts to act on."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import auth, data
from dashboard.fmt import METRIC_LABELS
from dashboard.theme import ALERT_COLOUR, colour_for, style
from dashboard.widgets import alert_actions, flash

ident = auth.identity()
st.title("Fairness")
flash()
results = data.latest_results()
mres = data.model_results(results)
if not mres:
    st.info("No monitoring results yet. Run `vigil monitor`.")
    st.stop()
c1, c2, c3 = st.columns(3)
model = c1.selectbox("Model", list(mres))
scan = mres[model].get("fairness") or {}
tables = scan.get("tables") or []
if not tables:
    st.info("The last monitor run has no fairness tables for this model.")
    st.stop()
attrs = [t["attribute"] for t in tables]
attribute = c2.selectbox("Attribute", attrs)
table = next(t for t in tables if t["attribute"] == attribute)
metric = c3.selectbox("Metric", table["metrics"], format_func=lambda m: METRIC_LABELS.get(m, m))
st.caption(
    f"Benjamini-Hochberg FDR q={scan.get('q', table.get('q'))} over "
    f"{scan.get('n_tests', '?')} tests; groups below n={table.get('min_n')} are shown as "
    f"insufficient data; an alert also needs a gap of at least {table.get('min_effect')}."
)
rows = data.fairness_rows(table, metric)
if rows.empty:
    st.info("No rows for this metric.")
else:
    groups = list(rows["group"])
    unit = "false positives per study" if metric == "fp_per_study" else "proportion 0-1"
    ok = rows[rows["status"] == "ok"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ok["value"],
            y=ok["group"],
            mode="markers",
            name=METRIC_LABELS.get(metric, metric),
            marker={
                "size": 16,
                "color": [colour_for(g, groups) for g in ok["group"]],
                "line": {
                    "width": [3 if a else 0 for a in ok["significant"]],
                    "color": ALERT_COLOUR,
                },
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": ok["ci_high"] - ok["value"],
                "arrayminus": ok["value"] - ok["ci_low"],
            },
        )
    )
    st.plotly_chart(
        style(
            fig,
            x_title=f"{METRIC_LABELS.get(metric, metric)} ({unit}) with 95% CI "
            "(outlined: significant after FDR)",
            y_title=attribute,
            height=max(300, 60 * len(groups)),
        ),
        width="stretch",
    )
    fmt3 = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            c: fmt3 for c in ("value", "ci_low", "ci_high", "gap", "gap_ci_low", "gap_ci_high")
        }
        | {c: st.column_config.NumberColumn(format="%.1e") for c in ("p_value", "p_adjusted")},
    )

st.subheader("Fairness alerts")
fa = data.alerts(kind=["fairness"], model=[model], status=["open", "acknowledged"])
if fa.empty:
    st.success("No open fairness alerts for this model.")
else:
    st.dataframe(fa, hide_index=True, width="stretch")
    alert_actions(fa, ident, "fairness")
