"""Model performance: trends with CI bands, the control chart and its alarms, per-site
comparison, and the threshold what-if.

Monthly and weekly trends and the control chart come from the last `vigil monitor` run (no case
frame); per-site figures and the what-if need every case: they wait for the frame,
which loads in the background, and say so."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.fmt import METRIC_LABELS, est_text
from dashboard.theme import ALERT_COLOUR, REFERENCE_COLOUR, ci_band_trace, colour_for, style
from dashboard.widgets import case_data_ready

st.title("Model performance")
names = data.model_names()
if not names:
    st.info("No models yet.")
    st.stop()
c1, c2, c3 = st.columns(3)
model = c1.selectbox("Model", names)
freq = c2.radio("Period", ["M", "W"], horizontal=True, format_func={"M": "month", "W": "week"}.get)
metric = c3.selectbox("Metric", list(data.METRICS_SHOWN), format_func=METRIC_LABELS.get)
card = next(m for m in data.models() if m["name"] == model)
colour = colour_for(model, names)

stored = data.stored_monthly_trend(model) if freq == "M" else data.stored_weekly_trend(model)
ready = stored is not None or case_data_ready("This trend, the per-site figures and the what-if")
if stored is not None:
    trend = stored
    run = data.latest_run_meta() or {}
    period = "Monthly" if freq == "M" else "Weekly"
    st.caption(f"{period} figures of monitor run {run.get('run_id')} (the monitors' own).")
elif ready:
    trend = data.performance_trend(model, freq)
else:
    trend = data.performance_trend_empty()
t = trend[trend["metric"] == metric]
ok = t[t["status"] == "ok"]
fig = go.Figure()
if len(ok):
    ci_band_trace(
        fig,
        ok["period"],
        ok["ci_low"],
        ok["ci_high"],
        ok["value"],
        name=f"{model} {METRIC_LABELS[metric]}",
        colour=colour,
    )
base = card.get(f"baseline_{metric}")
target = card.get(f"target_{metric}")
hlines = []
if base is not None:
    hlines.append((base, f"baseline {base:.2f}", REFERENCE_COLOUR, "dot"))
if target is not None:
    hlines.append((target, f"target {target:.2f}", ALERT_COLOUR, "dash"))
unit = "false positives per study" if metric == "fp_per_study" else "proportion (0-1)"
if metric != "fp_per_study":
    fig.layout.yaxis.range = [0, 1.02]
if ok.empty and len(t):
    st.warning(
        f"Every {'month' if freq == 'M' else 'week'} has too few cases for "
        f"{METRIC_LABELS[metric].lower()} (see the table): try months, or another metric."
    )
st.plotly_chart(
    style(
        fig,
        x_title="Period (exam date)",
        y_title=f"{METRIC_LABELS[metric]}, {unit}",
        hlines=hlines,
    ),
    width="stretch",
)
st.caption(
    f"Periods with too few cases are left out of the line; {len(t) - len(ok)} of {len(t)} "
    "periods are 'insufficient data' or 'undefined' (see the table)."
)
with st.expander("Trend table"):
    st.dataframe(t, hide_index=True, width="stretch")

# --- control chart (from the last monitor run) ---------------------------------------------
st.subheader("Control chart")
res = data.model_results(data.latest_results()).get(model) or {}
chart = res.get("control_chart")
charts = []
if isinstance(chart, dict) and "points" in chart:
    charts = [chart]
elif isinstance(chart, dict):
    charts = [c for c in chart.values() if isinstance(c, dict) and "points" in c]
elif isinstance(chart, list):
    charts = [c for c in chart if isinstance(c, dict) and "points" in c]
if not charts:
    st.info("No control chart in the last monitor run (run `vigil monitor`).")
for cc in charts:
    pts = [p for p in cc["points"] if p.get("statistic") is not None]
    params = cc.get("parameters") or {}
    f2 = go.Figure()
    f2.add_trace(
        go.Scatter(
            x=[p["period"] for p in pts],
            y=[p["statistic"] for p in pts],
            mode="lines+markers",
            name=f"{params.get('kind', 'chart')} statistic",
            line={"color": colour, "width": 3},
        )
    )
    lim = [
        (
            p["period"],
            p.get("upper_limit") if p.get("upper_limit") is not None else p.get("lower_limit"),
        )
        for p in pts
    ]
    if any(v is not None for _, v in lim):
        f2.add_trace(
            go.Scatter(
                x=[a for a, _ in lim],
                y=[b for _, b in lim],
                mode="lines",
                name="decision limit",
                line={"color": REFERENCE_COLOUR, "dash": "dash"},
            )
        )
    alarms = [p for p in pts if p.get("alarm")]
    f2.add_trace(
        go.Scatter(
            x=[p["period"] for p in alarms],
            y=[p["statistic"] for p in alarms],
            mode="markers",
            name="alarm",
            marker={"color": ALERT_COLOUR, "size": 16, "symbol": "x"},
        )
    )
    f2.update_layout(title=f"{cc.get('metric')} — {cc.get('description', '')}"[:120])
    st.plotly_chart(
        style(f2, x_title="Period", y_title="Chart statistic (SD units)"), width="stretch"
    )
    st.caption(
        f"Target {cc.get('target')} ({cc.get('target_source')}); "
        f"{params.get('method', '')}. Alarms: {', '.join(cc.get('alarms') or []) or 'none'}."
    )

# --- per site and the what-if: case-level data ----------------------------------------------
if not (ready and case_data_ready("The per-site figures and the what-if")):
    st.subheader("Per site")
    st.caption("Per-site figures wait for the case data (loading).")
    st.subheader("Threshold what-if")
    st.caption("The what-if waits for the case data (loading).")
    st.stop()
st.subheader("Per site")
sites = data.performance_by_site(model)
s = sites[sites["metric"] == metric]
if s.empty:
    st.info("No site data.")
else:
    f3 = go.Figure()
    sok = s[s["status"] == "ok"]
    f3.add_trace(
        go.Scatter(
            x=sok["value"],
            y=sok["site"],
            mode="markers",
            marker={"color": [colour_for(x, list(s["site"])) for x in sok["site"]], "size": 14},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": sok["ci_high"] - sok["value"],
                "arrayminus": sok["value"] - sok["ci_low"],
            },
            name=METRIC_LABELS[metric],
        )
    )
    tl = [(target, "target", ALERT_COLOUR, "dash")] if target is not None else []
    st.plotly_chart(
        style(
            f3,
            x_title=f"{METRIC_LABELS[metric]} ({unit}) with 95% CI",
            y_title="Site",
            height=320,
            vlines=tl,
        ),
        width="stretch",
    )
    st.dataframe(s, hide_index=True, width="stretch")

# --- threshold what-if --------------------------------------------------------------------
st.subheader("Threshold what-if")
grid = data.threshold_table(model)
op = float(card["operating_threshold"])
thr = st.slider(
    "Operating threshold",
    0.01,
    0.99,
    value=min(max(round(op, 2), 0.01), 0.99),
    step=0.01,
    help=f"The current operating threshold is {op}",
)
row = grid.loc[(grid["threshold"] - thr).abs().idxmin()]
cur = grid.loc[(grid["threshold"] - op).abs().idxmin()]


def est(r, m):
    return {
        "value": r[m],
        "ci_low": r[f"{m}_ci_low"],
        "ci_high": r[f"{m}_ci_high"],
        "n": r[f"{m}_n"],
        "status": r[f"{m}_status"],
    }


w1, w2, w3, w4 = st.columns(4)
for col, m in zip(
    (w1, w2, w3, w4), ("sensitivity", "specificity", "fp_per_study", "flag_rate"), strict=True
):
    e = est(row, m)
    delta = None
    if e["status"] == "ok" and cur[f"{m}_status"] == "ok":
        delta = f"{e['value'] - cur[m]:+.3f} vs current"
    col.metric(f"What-if {METRIC_LABELS[m]}", est_text(e), delta=delta, delta_color="off")
f4 = go.Figure()
for m, ccol in (
    ("sensitivity", colour),
    ("specificity", colour_for("specificity", ["a", "specificity"])),
):
    okg = grid[grid[f"{m}_status"] == "ok"]
    ci_band_trace(
        f4,
        okg["threshold"],
        okg[f"{m}_ci_low"],
        okg[f"{m}_ci_high"],
        okg[m],
        name=METRIC_LABELS[m],
        colour=ccol,
    )
st.plotly_chart(
    style(
        f4,
        x_title="Threshold (score)",
        y_title="Proportion (0-1)",
        vlines=[(op, "current", REFERENCE_COLOUR, "dot"), (thr, "what-if", ALERT_COLOUR, "dash")],
    ),
    width="stretch",
)
