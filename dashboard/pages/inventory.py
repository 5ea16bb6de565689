"""Model inventory: the registry's model cards and each card's version history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data

st.title("Model inventory")
models = data.models()
if not models:
    st.info("No models registered. Add one with `vigil models add CARD.toml`.")
    st.stop()

summary = pd.DataFrame(
    [
        {
            "model": m["name"],
            "vendor": m["vendor"],
            "finding": m["finding"],
            "version": m["current_version"],
            "status": m["status"],
            "clearance": m["clearance_id"],
            "go-live": m["go_live_date"],
            "owner": m["owner"],
            "threshold": m["operating_threshold"],
        }
        for m in models
    ]
)
st.metric("Models in the inventory", len(models))
st.dataframe(summary, hide_index=True, width="stretch")

name = st.selectbox("Model card", [m["name"] for m in models])
m = next(x for x in models if x["name"] == name)
c1, c2 = st.columns(2)
with c1:
    st.markdown(f"### {m['name']}")
    st.markdown(
        f"**Product:** {m['product'] or '—'} ({m['vendor'] or 'vendor not recorded'})  \n"
        f"**Intended use:** {m['intended_use'] or '—'}  \n"
        f"**Modality / body part:** {m['modality'] or '—'} / {m['body_part'] or '—'}  \n"
        f"**Regulatory clearance:** {m['clearance_id'] or '—'}  \n"
        f"**Operating threshold:** {m['operating_threshold']}  \n"
        f"**Owner:** {m['owner'] or '—'} · **status:** {m['status']}"
    )
with c2:
    base = pd.DataFrame(
        [
            {"metric": k, "baseline": m.get(f"baseline_{k}"), "target": m.get(f"target_{k}")}
            for k in ("sensitivity", "specificity", "auc", "ppv")
        ]
    )
    st.markdown(
        f"**Baseline** ({m['baseline_period'] or 'period not recorded'}, "
        f"n={m['baseline_n'] or '—'})"
    )
    st.dataframe(base, hide_index=True, width="stretch")
if m.get("card"):
    with st.expander("Rest of the card"):
        st.json(m["card"])
st.subheader("Version history")
st.dataframe(data.model_versions(m["id"]), hide_index=True, width="stretch")
