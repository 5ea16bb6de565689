"""Settings (admins only): what this server runs with, and the application settings kept in
the store. Secrets are never shown, only whether the public demo secrets are in use; every
change is written to the audit log."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from dashboard.widgets import flash
from vigil.errors import VigilError

ident = auth.require(data.SETTINGS_PERMISSION)
st.title("Settings")
flash()

st.subheader("Effective server settings")
st.caption(
    "From VIGIL_* environment variables and vigil.toml (the README's settings table); change "
    "them there and restart. Secrets are never displayed."
)
eff = data.effective_settings()
st.dataframe(eff, hide_index=True, width="stretch")
if data.settings().uses_demo_secrets:
    st.warning(
        "The public demo pseudonym secret or dead-letter key is in use: fine for demo data, "
        "never for real feeds (set VIGIL_PSEUDONYM_SECRET and VIGIL_DEADLETTER_KEY)."
    )

st.subheader("Application settings")
st.caption("Kept in the store; every change is in the audit log (who, what, when).")
current = data.app_settings()
with st.form("app-settings"):
    values = {
        spec.key: int(
            st.number_input(
                spec.label,
                min_value=spec.low,
                max_value=spec.high,
                value=current[spec.key],
                step=1,
                help=f"{spec.help} Default {spec.default}.",
            )
        )
        for spec in data.APP_SETTINGS
    }
    if st.form_submit_button("Save settings"):
        try:
            data.save_app_settings(values, ident)
        except VigilError as exc:
            st.error(str(exc))
        else:
            st.session_state["flash"] = "Settings saved."
            st.rerun()

st.subheader("ROI inputs")
roi = data.stored_setting(data.ROI_SETTING)
st.caption(
    "Administrators edit the ROI and business-case inputs on that page; stored values: "
    + ("none yet (the sourced defaults apply)." if not roi else "")
)
if roi:
    st.json(roi, expanded=False)

st.subheader("Recent setting changes")
st.dataframe(data.audit_log(limit=50, action="setting."), hide_index=True, width="stretch")
