"""Discordance review: cases where the AI and the radiologist disagree. A quality officer
adjudicates; the decision becomes the reference label (source "adjudication", audited)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import auth, data
from dashboard.widgets import case_data_ready, flash
from vigil.errors import VigilError
from vigil.users import Permission

ident = auth.identity()
st.title("Discordance review")
flash()
names = data.model_names()
if not names:
    st.info("No models yet.")
    st.stop()
if not case_data_ready("The discordance review"):
    st.stop()
c1, c2, c3 = st.columns(3)
model = c1.selectbox("Model", names)
kind = c2.radio("Disagreement", ["all", "AI positive only", "AI negative only"], horizontal=True)
show = c3.radio("Cases", ["to review", "adjudicated"], horizontal=True)
cases = data.discordant_cases(model, adjudicated=(show == "adjudicated"))
if kind != "all":
    cases = cases[cases["ai_call"] == (kind == "AI positive only")]
m1, m2 = st.columns(2)
m1.metric("Discordant cases to review", len(data.discordant_cases(model, adjudicated=False)))
m2.metric("Adjudicated", len(data.discordant_cases(model, adjudicated=True)))
SHOWN = data.app_settings()["discordance_rows_shown"]  # newest first; export has all
if cases.empty:
    st.success("No cases here.")
else:
    if len(cases) > SHOWN:
        st.caption(f"The {SHOWN} most recent of {len(cases):,} cases; the export has all.")
    cases = cases.head(SHOWN)
    st.dataframe(cases, hide_index=True, width="stretch")

st.download_button(
    "Export discordant cases, de-identified (CSV)",
    lambda m=model: data.discordant_export_csv(m),  # built on click, not on every render
    file_name=f"vigil-discordant-{model}.csv",
    mime="text/csv",
    on_click="ignore",
    help="No accession, no study id, no exact dates: a one-way case key, age band, exam month.",
)

if cases.empty or show == "adjudicated":
    st.stop()
st.subheader("Case")
labels = {
    int(r.study_id): f"study {r.study_id} · {r.accession} · score {r.score:.2f} · AI "
    f"{'positive' if r.ai_call else 'negative'} vs radiologist {r.radiologist}"
    for r in cases.itertuples()
}
study_id = st.selectbox("Case to review", list(labels), format_func=labels.get)
case = cases[cases["study_id"] == study_id].iloc[0]
rs = data.rescore_rows([int(study_id)])
left, right = st.columns([2, 1])
with left:
    if rs.empty:
        st.caption("Not re-scored.")
    else:
        st.dataframe(
            rs[
                [
                    c
                    for c in (
                        "model_hash",
                        "production_score",
                        "rescore_score",
                        "difference",
                        "call_flip",
                        "error",
                        "scored_at",
                    )
                    if c in rs.columns
                ]
            ],
            hide_index=True,
            width="stretch",
        )
with right:
    shown = False
    for p in rs.get("saliency_path", []):
        if isinstance(p, str) and p and Path(p).is_file():
            st.image(p, caption="Saliency map (re-scoring model)")
            shown = True
    if not shown:
        st.caption("No saliency map for this case.")

if ident.can(Permission.ADJUDICATE):
    with st.form("adjudicate", clear_on_submit=True):
        verdict = st.radio(
            "Adjudication",
            list(data.ADJUDICATIONS),
            format_func=data.ADJUDICATIONS.get,
            horizontal=True,
        )
        note = st.text_input("Note (optional; no patient identifiers)")
        if st.form_submit_button("Record adjudication"):
            try:
                data.adjudicate(
                    int(study_id),
                    str(case["finding"]),
                    verdict,
                    ident,
                    ai_call=bool(case["ai_call"]),
                    rad_label=str(case["radiologist"]),
                    note=note,
                )
            except VigilError as exc:
                st.error(str(exc))
            else:
                st.session_state["flash"] = (
                    f"Study {study_id}: {data.ADJUDICATIONS[verdict]} recorded as the reference."
                )
                st.rerun()
else:
    st.caption("Quality officers adjudicate discordant cases.")
