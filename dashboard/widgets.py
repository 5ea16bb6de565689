"""Small pieces several pages share (alert actions, friendly errors)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from vigil.errors import VigilError
from vigil.users import Identity, Permission


def alert_actions(table: pd.DataFrame, ident: Identity, key: str) -> None:
    """Acknowledge / resolve / note one alert of ``table`` (quality officers and admins)."""
    if not ident.can(Permission.ACT_ON_ALERTS):
        st.caption("Your role can read alerts; quality officers acknowledge and resolve them.")
        return
    actionable = table[table["status"] != "resolved"]
    if actionable.empty:
        return
    labels = {
        int(r.id): f"#{r.id} [{r.status}] {r.model} {r.kind}: {r.summary}"[:160]
        for r in actionable.itertuples()
    }
    with st.form(f"alert-action-{key}", clear_on_submit=True):
        st.markdown("**Act on an alert**")
        alert_id = st.selectbox("Alert", list(labels), format_func=labels.get)
        note = st.text_area("Note (required to resolve)", max_chars=2000)
        c1, c2, c3 = st.columns(3)
        ack = c1.form_submit_button("Acknowledge")
        res = c2.form_submit_button("Resolve")
        add = c3.form_submit_button("Add note")
    if ack or res or add:
        try:
            if ack:
                data.acknowledge_alert(alert_id, ident, note)
            elif res:
                data.resolve_alert(alert_id, ident, note)
            else:
                data.note_alert(alert_id, ident, note)
        except VigilError as exc:
            st.error(str(exc))
        else:
            verb = "acknowledged" if ack else "resolved" if res else "noted"
            st.session_state["flash"] = f"Alert #{alert_id} {verb}."
            st.rerun()


def flash() -> None:
    msg = st.session_state.pop("flash", None)
    if msg:
        st.success(msg)


LOADING_TEXT = "Loading case data…"


@st.fragment(run_every=1.5)
def _rerun_when_loaded() -> None:
    """Polls (this fragment only) until the frame is in, then reruns the page once."""
    if data.frame_ready():
        st.rerun(scope="app")


def case_data_ready(what: str) -> bool:
    """True when the case frame is loaded; else starts loading it in the background, shows
    an explicit loading state for ``what`` and reruns the page by itself when the data is in.

    Call once per page run (sections that need case data share the answer)."""
    if data.frame_ready():
        return True
    st.info(
        f"{LOADING_TEXT} {what} needs every case and appears here by itself once the case "
        "data is loaded (the first time after the server starts or after new data; the "
        "figures above come from the last monitor run and are complete).",
        icon=":material/hourglass_top:",
    )
    _rerun_when_loaded()
    return False
