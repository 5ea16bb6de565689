"""Drift: which inputs and scores drifted, since when, by how much; distributions side by side.

Decisions are the drift monitor's (sample-size aware: significance AND a minimum effect size);
this page only shows them and the data behind them. Findings come from the last monitor run;
the distributions need every case and wait (visibly) for the background-loaded frame."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.theme import OKABE_ITO, style
from dashboard.widgets import case_data_ready

st.title("Drift")
mres = data.model_results(data.latest_results())
if not mres:
    st.info("No monitoring results yet. Run `vigil monitor`.")
    st.stop()
model = st.selectbox("Model", list(mres))
block = mres[model].get("drift") or {}
method = block.get("method") or {}
st.caption(
    f"Reference: {', '.join(block.get('reference_windows') or []) or 'n/a'}. Rule: "
    f"{method.get('description', 'see monitors/SCHEMA.md')}."
)
findings = data.drift_findings(block)
st.metric("Drifted inputs (scope x column)", len(findings))
if findings.empty:
    st.success("No input or score drifted in any window.")
else:
    st.dataframe(
        findings,
        hide_index=True,
        width="stretch",
        column_config={
            "p value": st.column_config.NumberColumn(format="%.1e"),
            "psi": st.column_config.NumberColumn(format="%.3f"),
            "psi threshold": st.column_config.NumberColumn(format="%.3f"),
            "distance": st.column_config.NumberColumn(format="%.3f"),
        },
    )

report = data.evidently_report(model)
if report:
    st.download_button(
        f"Evidently report ({report.name})",
        report.read_bytes(),
        file_name=report.name,
        mime="text/html",
        help="Evidently's own drift report for the latest month; opens in the browser offline.",
    )
else:
    st.caption("No Evidently report for this run (`vigil monitor --evidently DIR` writes one).")

st.subheader("Distributions side by side")
columns = list(block.get("columns") or [])
windows = data.drift_windows(block)
if not columns or not windows:
    st.info("Nothing to compare yet (no reference or no later month).")
    st.stop()
c1, c2, c3 = st.columns(3)
default_col = findings["column"].iloc[0] if len(findings) else columns[0]
column = c1.selectbox("Input", columns, index=columns.index(default_col))
scopes = data.drift_scopes(block)
scope = c2.selectbox("Scope", scopes, format_func=lambda s: s or "all sites")
window = c3.selectbox("Month", windows, index=len(windows) - 1)
if not case_data_ready("The side-by-side distribution"):
    st.stop()
dist = data.distribution(model, column, scope, tuple(block.get("reference_windows") or []), window)
fig = go.Figure()
for (name, share), colour in zip(
    (("reference", dist["ref_share"]), (window, dist["cur_share"])), OKABE_ITO, strict=False
):
    fig.add_trace(go.Bar(x=dist["bin"], y=share, name=name, marker_color=colour))
fig.update_layout(barmode="group")
st.plotly_chart(style(fig, x_title=column, y_title="Share of cases (0-1)"), width="stretch")
detail = data.drift_detail(block, scope, window, column)
if detail:

    def g(key: str) -> str:
        v = detail.get(key)
        return "—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)

    st.caption(
        f"{g('test')} p={g('p_value')} (threshold {g('p_threshold')}); PSI {g('psi')} "
        f"(threshold {g('psi_threshold')}); n_ref={g('n_ref')}, n_cur={g('n_cur')}; "
        f"drifted: {g('drifted')}"
    )
