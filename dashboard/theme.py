"""Colours and chart defaults: readable on a projector, colour-blind safe (Okabe-Ito)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Black is kept for reference lines.
OKABE_ITO = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
]
ALERT_COLOUR = "#D55E00"
REFERENCE_COLOUR = "#000000"
VERDICT_COLOURS = {"on target": "#009E73", "watch": "#E69F00", "act": "#D55E00"}


# A small template of our own: plotly's built-in ones are large, and building one per figure
# costs more than the rest of a page's server time. Set as the default for every figure.
pio.templates["vigil"] = go.layout.Template(
    layout={
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": OKABE_ITO,
        "font": {"size": 16, "color": "#222222"},
        "xaxis": {"gridcolor": "#E5E5E5", "zerolinecolor": "#BBBBBB", "automargin": True},
        "yaxis": {"gridcolor": "#E5E5E5", "zerolinecolor": "#BBBBBB", "automargin": True},
        "hovermode": "closest",
    }
)
pio.templates.default = "vigil"


def colour_for(name: str, names: list[str]) -> str:
    """The same colour for the same model or group on every page (position in sorted names)."""
    ordered = sorted({str(n) for n in names})
    idx = ordered.index(str(name)) if str(name) in ordered else abs(hash(name))
    return OKABE_ITO[idx % len(OKABE_ITO)]


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


Line = tuple[float, str, str, str]  # position, label, colour, dash


def _ref_lines(hlines: list[Line], vlines: list[Line]) -> tuple[list[dict], list[dict]]:
    """Reference lines as plain layout shapes (plotly's add_hline is slow per call)."""
    shapes, notes = [], []
    for y, label, colour, dash in hlines:
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": y,
                "y1": y,
                "line": {"color": colour, "dash": dash, "width": 2},
            }
        )
        notes.append(
            {
                "xref": "paper",
                "x": 1,
                "yref": "y",
                "y": y,
                "text": label,
                "showarrow": False,
                "xanchor": "right",
                "yanchor": "bottom",
            }
        )
    for x, label, colour, dash in vlines:
        shapes.append(
            {
                "type": "line",
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "xref": "x",
                "x0": x,
                "x1": x,
                "line": {"color": colour, "dash": dash, "width": 2},
            }
        )
        notes.append(
            {
                "yref": "paper",
                "y": 1,
                "xref": "x",
                "x": x,
                "text": label,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
            }
        )
    return shapes, notes


def style(
    fig: go.Figure,
    *,
    x_title: str,
    y_title: str,
    height: int = 420,
    hlines: list[Line] = (),
    vlines: list[Line] = (),
) -> go.Figure:
    """Large fonts and labelled axes (with units) for the committee room's projector; reference
    lines (baseline, target, thresholds) drawn with their labels."""
    shapes, notes = _ref_lines(list(hlines), list(vlines))
    fig.update_layout(
        shapes=shapes,
        annotations=notes,
        font={"size": 16},
        height=height,
        margin={"l": 70, "r": 30, "t": 50, "b": 60},
        legend={"orientation": "h", "y": -0.2},
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    return fig


def ci_band_trace(
    fig: go.Figure, x, low, high, value, *, name: str, colour: str, y_is_share: bool = True
) -> None:
    """A line with its 95% CI as a shaded band (the band first so the line sits on top)."""
    x = list(x)
    fig.add_trace(
        go.Scatter(
            x=x + x[::-1],
            y=list(high) + list(low)[::-1],
            fill="toself",
            fillcolor=rgba(colour, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            name=f"{name} 95% CI",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=list(value), mode="lines+markers", name=name, line={"color": colour, "width": 3}
        )
    )
