"""Readiness checklist per model and for the programme: status, owner, evidence, history."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from dashboard.widgets import flash
from vigil.errors import VigilError
from vigil.users import Permission

ident = auth.identity()
st.title("Readiness checklist")
flash()
models = data.models()
scopes = {"Programme (all models)": None} | {m["name"]: m["id"] for m in models}
scope = st.selectbox("Checklist for", list(scopes))
model_id = scopes[scope]
table = data.checklist(model_id)
done = int((table["status"] == "done").sum())
applicable = int((table["status"] != "na").sum())
c1, c2 = st.columns(2)
c1.metric("Items done", f"{done} of {applicable}")
c2.metric("Not started", int((table["status"] == "not_started").sum()))
st.dataframe(
    table.drop(columns="item_key"),
    hide_index=True,
    width="stretch",
    column_config={"status": st.column_config.TextColumn("status", width="small")},
)

if ident.can(Permission.EDIT_CHECKLIST):
    items = dict(zip(table["item_key"], table["item"], strict=True))
    st.markdown("**Update an item**")
    key = st.selectbox("Item", list(items), format_func=items.get)
    current = table.set_index("item_key").loc[key]
    with st.form(f"checklist-edit-{model_id}-{key}"):
        status = st.selectbox(
            "Status",
            data.CHECKLIST_STATUSES,
            index=data.CHECKLIST_STATUSES.index(current["status"]),
        )
        owner = st.text_input("Owner", value=current["owner"])
        evidence = st.text_area("Evidence (document, link, minutes)", value=current["evidence"])
        note = st.text_input("Note for the history")
        if st.form_submit_button("Save item"):
            try:
                data.update_checklist_item(
                    model_id, key, ident, status=status, owner=owner, evidence=evidence, note=note
                )
            except VigilError as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = f"Saved: {items[key]}"
                st.rerun()
else:
    st.caption("Administrators and admins update the checklist.")

st.subheader("History")
st.dataframe(data.checklist_history(model_id), hide_index=True, width="stretch")
