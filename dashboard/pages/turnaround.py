"""Read time and turnaround: before vs after go-live, AI-flagged vs other studies.

Measured figures come from the feeds' timestamps; read time only where the RIS sends OBR-32
interpretation start/end. Nothing here is assumed: assumptions live on the ROI page.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data, widgets
from dashboard.theme import colour_for, style
from monitors.results import Status
from monitors.turnaround import MedianCI, median_difference

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
if not widgets.case_data_ready("Turnaround and read time"):
    st.stop()
table = data.turnaround_table("turnaround_min")
table = table[table["model"] == model]
read = data.turnaround_table("read_min")
read = read[read["model"] == model]


def _median(tbl, group: str) -> MedianCI | None:
    rows = tbl[tbl["group"] == group]
    if rows.empty:
        return None
    r = rows.iloc[0]
    ok = r["status"] == "ok"
    return MedianCI(
        float(r["median_min"]) if ok else None,
        float(r["ci_low"]) if ok else None,
        float(r["ci_high"]) if ok else None,
        int(r["n"]),
        Status(r["status"]),
        group=group,
    )


def differences(tbl) -> None:
    """After - before go-live and flagged - not flagged, with the CI of the difference."""
    lines = []
    for comparison, a, b in (
        ("go-live", "before go-live", "after go-live"),
        ("AI flag", "not flagged", "AI-flagged"),
    ):
        ma, mb = _median(tbl, a), _median(tbl, b)
        if ma is None or mb is None:
            continue
        d = median_difference(ma, mb, comparison)
        if d.status is Status.OK:
            lines.append(
                f"- **{b} − {a}**: {d.difference:+.1f} min (95% CI {d.ci_low:+.1f} to "
                f"{d.ci_high:+.1f}){'' if d.significant else ', CI includes 0'}"
            )
        else:
            lines.append(f"- **{b} − {a}**: not estimable ({str(d.status).replace('_', ' ')})")
    if lines:
        st.markdown("Difference of medians (measured):\n" + "\n".join(lines))


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
    differences(table)
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
    differences(read)
    chart(read, f"{model}: median read time", "Median read time (minutes)")
