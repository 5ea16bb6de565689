"""ROI and business case: cost inputs (sourced, editable by administrators) against measured
volume, read time and detection figures; annual cost, savings, payback, sensitivity range."""

from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import auth, data
from dashboard.roi import INPUT_SPECS, RoiInputs, compute_roi, scenario_range, sensitivity, to_csv
from dashboard.theme import OKABE_ITO, style
from dashboard.widgets import case_data_ready, flash
from vigil.errors import VigilError
from vigil.users import Permission

ident = auth.identity()
can_edit = ident.can(Permission.EDIT_ROI)
st.title("ROI and business case")
flash()
scope = st.selectbox("Scope", ["All models", *data.model_names()])
model = None if scope == "All models" else scope

stored = RoiInputs.from_dict(data.stored_setting(data.ROI_SETTING))
if not case_data_ready("The business case (its measured volume, read time and detections)"):
    st.stop()  # the inputs default to measured figures: no half-filled form meanwhile
measured = data.measured_roi_figures(model)

st.subheader("Measured by Vigil")
m1, m2, m3 = st.columns(3)
m1.metric(
    "Studies per year (measured)",
    f"{measured['annual_volume']:,.0f}",
    help=f"{measured['studies']:,} studies over {measured['days']:.0f} days, annualised",
)
m2.metric(
    "Read minutes saved per study (measured)",
    "not measured" if measured["minutes_saved"] is None else f"{measured['minutes_saved']:.2f}",
    help=measured["minutes_note"],
)
m3.metric(
    "Extra true findings per year (adjudicated)",
    f"{measured['extra_detections']:,.1f}",
    help="discordant cases adjudicated 'AI right' with a positive AI call, annualised",
)

st.subheader("Inputs")
st.caption(
    "Each input shows its source. **Measured** inputs come from the data above; the others are "
    "**assumptions**" + ("" if can_edit else " (administrators edit them)") + "."
)
use_measured = st.toggle(
    "Use the measured figures where Vigil has them", value=True, disabled=not can_edit
)
values: dict[str, float] = {}
cols = st.columns(2)
for k, spec in enumerate(INPUT_SPECS):
    default = getattr(stored, spec.key)
    is_measured = False
    if use_measured and spec.key == "annual_volume" and measured["annual_volume"] > 0:
        default, is_measured = measured["annual_volume"], True
    if use_measured and spec.key == "minutes_saved_per_study" and measured["minutes_saved"]:
        default, is_measured = measured["minutes_saved"], True
    if use_measured and spec.key == "extra_detections_per_year":
        default, is_measured = measured["extra_detections"], True
    tag = "measured" if is_measured else "assumption"
    values[spec.key] = cols[k % 2].number_input(
        f"{spec.label} ({spec.unit}) — {tag}",
        value=float(default),
        min_value=None if spec.key == "minutes_saved_per_study" else 0.0,  # may be negative
        step=max(float(spec.default) / 20.0, 0.01),
        help=spec.source,
        disabled=not can_edit,
        key=f"roi-{scope}-{use_measured}-{spec.key}",  # new defaults when the scope changes
    )
inputs = RoiInputs(**values)
if can_edit and st.button("Save these inputs as the defaults"):
    try:
        data.save_setting(data.ROI_SETTING, inputs.to_dict(), ident, Permission.EDIT_ROI)
    except VigilError as exc:
        st.error(str(exc))
    else:
        st.session_state["flash"] = "ROI inputs saved."
        st.rerun()

result = compute_roi(inputs)
rows = sensitivity(inputs)
pess, opt = scenario_range(inputs)
st.subheader("Result")
r1, r2, r3, r4 = st.columns(4)
r1.metric("Annual cost", f"${result.annual_cost:,.0f}")
r2.metric("Annual savings", f"${result.annual_savings:,.0f}")
r3.metric("Net per year", f"${result.annual_net:,.0f}")


def payback(v: float | None) -> str:
    return "never" if v is None else f"{v:.1f} years"


r4.metric("Payback period", payback(result.payback_years))
st.markdown(
    f"**Range** (every input at its unfavourable / favourable end): net per year "
    f"${pess.annual_net:,.0f} to ${opt.annual_net:,.0f}; payback {payback(pess.payback_years)} "
    f"to {payback(opt.payback_years)}. Over {inputs.horizon_years:.0f} years, upfront included: "
    f"${result.horizon_net:,.0f}."
)
if rows:
    tornado = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=tornado["label"],
            x=tornado["net_at_low"] - result.annual_net,
            orientation="h",
            name="input at low end",
            marker_color=OKABE_ITO[0],
        )
    )
    fig.add_trace(
        go.Bar(
            y=tornado["label"],
            x=tornado["net_at_high"] - result.annual_net,
            orientation="h",
            name="input at high end",
            marker_color=OKABE_ITO[1],
        )
    )
    fig.update_layout(barmode="overlay", yaxis={"autorange": "reversed"})
    st.plotly_chart(
        style(fig, x_title="Change in net per year ($)", y_title="Input", height=460),
        width="stretch",
    )
    st.dataframe(tornado, hide_index=True, width="stretch")
st.download_button(
    "Download the business case (CSV)",
    to_csv(inputs, result, rows),
    file_name="vigil-business-case.csv",
    mime="text/csv",
)
