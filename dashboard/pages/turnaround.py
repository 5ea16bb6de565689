"""Read time and turnaround: before vs after go-live, AI-flagged vs other studies.

Measured figures come from the feeds' timestamps; read time only where the RIS sends OBR-32
interpretation start/end. Nothing here is assumed: assumptions live on the ROI page.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.theme import colour_for, style

st.title("Read time and turnaround")
st.caption(
    "**Measured** from the feeds: turnaround = exam to first report (minutes); read time = "
    "radiologist's interpretation start to end, only where the RIS sends it (OBR-32). "
    "Medians with exact order-statistic 95% CIs."
)
if not data.model_names():
    st.info("No models yet.")
    st.stop()
model = st.selectbox("Model", data.model_names())
table = data.turnaround_table("turnaround_min")
table = table[table["model"] == model]
read = data.turnaround_table("read_min")
read = read[read["model"] == model]


def chart(tbl, title: str, y: str) -> None:
    groups = list(tbl["group"])
    fig = go.Figure()
    ok = tbl[tbl["status"] == "ok"]
    fig.add_trace(
        go.Bar(
            x=ok["group"],
            y=ok["median_min"],
            marker_color=[colour_for(g, groups) for g in ok["group"]],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": ok["ci_high"] - ok["median_min"],
                "arrayminus": ok["median_min"] - ok["ci_low"],
                "thickness": 2,
            },
            text=[f"{m:.1f} min (n={n:,})" for m, n in zip(ok["median_min"], ok["n"], strict=True)],
            textposition="outside",
            name=title,
        )
    )
    fig.update_layout(title=title, showlegend=False)
    st.plotly_chart(style(fig, x_title="Group", y_title=y), width="stretch")


st.subheader("Report turnaround (measured)")
if table.empty:
    st.info("No turnaround times in the data.")
else:
    st.dataframe(table, hide_index=True, width="stretch")
    chart(table, f"{model}: median turnaround", "Median turnaround (minutes)")

st.subheader("Read time (measured where the feed carries it)")
cov = data.read_time_coverage()
st.dataframe(cov, hide_index=True, width="stretch")
if read.empty or (read["n"] == 0).all():
    st.info(
        "No feed carries read times for this model: read-time savings on the ROI page are "
        "an assumption."
    )
else:
    st.dataframe(read, hide_index=True, width="stretch")
    chart(read, f"{model}: median read time", "Median read time (minutes)")
