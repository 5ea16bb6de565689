"""Audit log: every write a person made (admins only)."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from vigil.users import Permission

auth.require(Permission.VIEW_AUDIT)
st.title("Audit log")
c1, c2 = st.columns(2)
actor = c1.text_input("Actor")
action = c2.text_input("Action starts with", placeholder="alert., case., checklist., user.")
log = data.audit_log(actor=actor.strip(), action=action.strip())
st.metric("Entries shown", len(log))
st.dataframe(log, hide_index=True, width="stretch")
