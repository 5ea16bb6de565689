"""Static charts for the pack as self-contained SVG strings (matplotlib's SVG backend).

Why matplotlib: it draws SVG in-process with no browser (plotly's static export needs Kaleido or
a Chrome at run time), it is mature and packaged everywhere, and its SVG keeps text as text
(``svg.fonttype = none``) so WeasyPrint embeds the same fonts as the tables. Every series differs
by marker and line style as well as colour, so the charts read in black and white.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
from collections.abc import Callable, Sequence

from reports.pack import ControlChart, Trend

# Dark, print-safe colours; style and marker carry the meaning, colour only helps.
_COLOURS = ["#1f3b73", "#8c2d04", "#2d6a2d", "#5a1e5a", "#444444"]
_MARKERS = ["o", "s", "^", "D", "v"]
_LINES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1))]
_HATCHES = ["///", "...", "xxx", "\\\\\\", "ooo"]
_counter = itertools.count(1)


_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "vigil",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#cccccc",
    "grid.linewidth": 0.4,
    "legend.fontsize": 7,
    "legend.frameon": False,
}


def _styled(fn: Callable[..., str]) -> Callable[..., str]:
    """Draw inside the pack's rc settings without touching matplotlib's global state."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> str:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float):
    """A figure outside pyplot (no global figure registry: safe in a server thread)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


_ID = re.compile(r'\bid="([^"]+)"')


def _scope_ids(svg: str) -> str:
    """Prefix every id (and its references) so several charts can live inline in one page."""
    prefix = f"c{next(_counter)}-"
    ids = set(_ID.findall(svg))
    if not ids:
        return svg
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)

    def ref(m: re.Match[str]) -> str:
        name = m.group(2)
        return f"{m.group(1)}#{prefix}{name}" if name in ids else m.group(0)

    return re.sub(r'(url\(|href=")#([^)"]+)', ref, svg)


def _to_svg(fig, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: inline in HTML
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)  # RDF with URLs
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_esc(title)}" ', 1)
    return _scope_ids(svg)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


@_styled
def trend_chart(trends: Sequence[Trend], title: str) -> str:
    """Metrics per period with 95% CI bars; baseline dashed, target dotted (one per metric)."""
    fig, ax = _figure(6.2, 2.4)
    labels: list[str] = []
    for t in trends:
        for p in t.points:
            if p.label not in labels:
                labels.append(p.label)
    pos = {lab: i for i, lab in enumerate(labels)}
    for i, t in enumerate(trends):
        xs, ys, lo, hi = [], [], [], []
        for p in t.points:
            e = p.estimate
            if e.value is None:
                continue
            off = (i - (len(trends) - 1) / 2) * 0.08
            xs.append(pos[p.label] + off)
            ys.append(e.value)
            lo.append(e.value - (e.ci_low if e.ci_low is not None else e.value))
            hi.append((e.ci_high if e.ci_high is not None else e.value) - e.value)
        c, m, ls = _COLOURS[i % 5], _MARKERS[i % 5], _LINES[i % 5]
        if xs:
            ax.errorbar(
                xs,
                ys,
                yerr=[lo, hi],
                color=c,
                marker=m,
                linestyle=ls,
                linewidth=1.2,
                markersize=4,
                capsize=2,
                label=f"{t.metric} (95% CI)",
                markerfacecolor="white" if i % 2 else c,
            )
        if t.baseline is not None:
            ax.axhline(t.baseline, color=c, linestyle=(0, (6, 3)), linewidth=0.8)
            ax.annotate(
                f"{t.metric} baseline",
                (len(labels) - 0.5, t.baseline),
                fontsize=6,
                ha="right",
                va="bottom",
                color=c,
            )
        if t.target is not None:
            ax.axhline(t.target, color=c, linestyle=(0, (1, 2)), linewidth=1.0)
            ax.annotate(
                f"{t.metric} target", (-0.4, t.target), fontsize=6, ha="left", va="top", color=c
            )
    _month_ticks(ax, labels)
    ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    ax.set_ylabel("value")
    ax.set_title(title, loc="left")
    if trends:
        ax.legend(loc="lower left", ncol=max(len(trends), 1))
    return _to_svg(fig, title)


def _limit_series(limit, n: int) -> list[float | None] | None:
    if limit is None:
        return None
    if isinstance(limit, int | float):
        return [float(limit)] * n
    return list(limit)


@_styled
def control_chart(charts: Sequence[ControlChart], title: str) -> str:
    """Charts sharing periods on one axes: each statistic its own marker and line style, the
    decision limits dashed (drawn once when equal), signals as large crosses."""
    fig, ax = _figure(6.2, 2.3)
    labels: list[str] = []
    for ch in charts:
        for x in ch.x:
            if x not in labels:
                labels.append(x)
    pos = {lab: i for i, lab in enumerate(labels)}
    drawn_limits: list[list[float]] = []
    for i, ch in enumerate(charts):
        xs = [pos[x] for x in ch.x]
        ys = [float("nan") if v is None else v for v in ch.values]
        ax.plot(
            xs,
            ys,
            color=_COLOURS[i % 5],
            marker=_MARKERS[i % 5],
            markersize=3.5,
            linestyle=_LINES[i % 5],
            linewidth=1.1,
            label=ch.statistic,
            markerfacecolor="white" if i % 2 else _COLOURS[i % 5],
        )
        for lim, name, style in (
            (ch.upper, "decision limit", "--"),
            (ch.lower, "lower limit", "-."),
        ):
            series = _limit_series(lim, len(xs))
            if series is None or all(v is None for v in series):
                continue
            vals = [float("nan") if v is None else float(v) for v in series]
            if any(_same(vals, d) for d in drawn_limits):
                continue
            drawn_limits.append(vals)
            ax.plot(
                xs,
                vals,
                color="#000000",
                linestyle=style,
                linewidth=0.9,
                label=name if not drawn_limits[:-1] else f"{name} ({ch.statistic})",
            )
        sig = [j for j in ch.signals if 0 <= j < len(xs) and ys[j] == ys[j]]
        if sig:
            ax.plot(
                [xs[j] for j in sig],
                [ys[j] for j in sig],
                linestyle="none",
                marker="X",
                markersize=8,
                color=_COLOURS[1],
                markeredgecolor="black",
                label="signal" if i == 0 else None,
            )
    _month_ticks(ax, labels)
    ax.set_title(title, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return _to_svg(fig, title)


def _month_ticks(ax, labels: list[str]) -> None:
    """At most ~12 readable tick labels: 'YYYY-MM' becomes 'Mon YY', slanted when many."""
    import math
    from datetime import datetime

    def short(lab: str) -> str:
        try:
            return datetime.strptime(lab, "%Y-%m").strftime("%b %y")
        except ValueError:
            return lab

    step = max(1, math.ceil(len(labels) / 12))
    ax.set_xticks(range(0, len(labels), step), [short(x) for x in labels[::step]])
    if len(labels) > 6:
        for t in ax.get_xticklabels():
            t.set_rotation(35)
            t.set_horizontalalignment("right")


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (x != x and y != y) or abs(x - y) < 1e-9 for x, y in zip(a, b, strict=True)
    )


@_styled
def forest_chart(
    rows: Sequence[tuple[str, float | None, float | None, float | None, bool]],
    reference: float | None,
    title: str,
    metric: str,
) -> str:
    """Subgroup estimates with CIs; filled squares are FDR-significant gaps, hollow circles not."""
    rows = [r for r in rows if r[1] is not None]
    fig, ax = _figure(6.2, max(1.2, 0.18 * len(rows) + 0.6))
    for i, (_label, v, lo, hi, sig) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.plot([lo, hi], [y, y], color="black", linewidth=0.9)
        ax.plot(
            [v],
            [y],
            marker="s" if sig else "o",
            markersize=4.5,
            markerfacecolor="black" if sig else "white",
            markeredgecolor="black",
        )
    if reference is not None:
        ax.axvline(reference, color="#444444", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.set_xlabel(f"{metric} (95% CI); dashed line: overall; ■ significant after FDR")
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    return _to_svg(fig, title)


@_styled
def bar_chart(
    labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str
) -> str:
    """Grouped bars, each series with its own hatch pattern (black-and-white safe)."""
    fig, ax = _figure(6.2, 2.2)
    k = max(len(series), 1)
    width = 0.8 / k
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (k - 1) / 2) * width for j in range(len(labels))]
        ax.bar(
            xs,
            values,
            width=width,
            label=name,
            color="white" if i % 2 else "#bbbbbb",
            edgecolor="black",
            hatch=_HATCHES[i % 5],
            linewidth=0.6,
        )
    step = max(1, len(labels) // 10)
    ax.set_xticks(range(0, len(labels), step), list(labels)[::step])
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.grid(axis="x", visible=False)
    if len(series) > 1:
        ax.legend(loc="upper left", ncol=k)
    return _to_svg(fig, title)
