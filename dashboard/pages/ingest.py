"""Ingest health: messages per sender per hour, dead letters by reason, unpaired results."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.theme import colour_for, style

st.title("Ingest health")
WINDOWS = [6, 12, 24, 48, 72, 168]
default = data.app_settings()["ingest_default_hours"]  # an admin setting
hours = st.select_slider(
    "Window",
    options=WINDOWS,
    value=min(WINDOWS, key=lambda h: abs(h - default)),
    format_func=lambda h: f"last {h} h",
)
per_hour = data.messages_per_hour(hours)
if per_hour.empty:
    st.info("No messages received yet.")
else:
    total = per_hour.groupby("sender")["messages"].sum()
    st.metric(f"Messages in the last {hours} h", int(total.sum()))
    fig = go.Figure()
    senders = sorted(per_hour["sender"].unique())
    for sender, g in per_hour.groupby("sender"):
        fig.add_trace(
            go.Bar(
                x=g["hour"], y=g["messages"], name=sender, marker_color=colour_for(sender, senders)
            )
        )
    fig.layout.barmode = "stack"
    st.plotly_chart(
        style(fig, x_title="Hour received (UTC)", y_title="Messages per hour"), width="stretch"
    )
    st.dataframe(total.rename("messages").reset_index(), hide_index=True, width="stretch")

st.subheader("Dead letters by reason")
st.caption("Reasons only: the messages themselves stay encrypted and are never shown here.")
dl = data.dead_letters_by_reason()
if dl.empty:
    st.success("No dead letters.")
else:
    st.metric("Dead letters", int(dl["messages"].sum()))
    st.dataframe(dl, hide_index=True, width="stretch")

st.subheader("AI results waiting for a radiologist's read")


@st.fragment(run_every=1.5)
def _poll_unpaired() -> None:
    if data.unpaired_if_ready() is not data.UNPAIRED_PENDING:
        st.rerun(scope="app")


unpaired = data.unpaired_if_ready()
if unpaired is data.UNPAIRED_PENDING:
    st.info("Counting AI results and reads… (a scan of every result; this fills in by itself)")
    _poll_unpaired()
elif unpaired is None:
    st.info("The pairing summary is not available in this build.")
else:
    table = pd.DataFrame(unpaired)
    if table.empty:
        st.info("No AI results yet.")
    else:
        st.dataframe(table, hide_index=True, width="stretch")
