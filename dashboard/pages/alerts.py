"""Alerts: the inbox across kinds, with filters and the lifecycle actions."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from dashboard.widgets import alert_actions, flash

ident = auth.identity()
st.title("Alerts")
flash()
everything = data.alerts()
c1, c2, c3 = st.columns(3)
status = c1.multiselect("Status", ["open", "acknowledged", "resolved"], ["open", "acknowledged"])
kinds = c2.multiselect("Kind", sorted(everything["kind"].dropna().unique()))
model = c3.multiselect("Model", data.model_names())
table = data.alerts(status=status or None, kind=kinds or None, model=model or None)

counts = everything["status"].value_counts()
m1, m2, m3 = st.columns(3)
m1.metric("Open", int(counts.get("open", 0)))
m2.metric("Acknowledged", int(counts.get("acknowledged", 0)))
m3.metric("Resolved", int(counts.get("resolved", 0)))

if table.empty:
    st.info("No alerts match these filters.")
else:
    st.dataframe(table, hide_index=True, width="stretch")
    alert_actions(table, ident, "inbox")
    history = data.alert_history([int(i) for i in table["id"]])
    with st.expander(f"History and notes ({len(history)})"):
        st.dataframe(history, hide_index=True, width="stretch")
