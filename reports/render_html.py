"""PackContent -> one self-contained HTML document (inline CSS and SVG, no external URL).

The same HTML feeds WeasyPrint for the PDF, so the two formats can never disagree. It opens
offline from an email attachment: nothing is fetched (no fonts, scripts or images by URL).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from reports import charts
from reports.pack import ModelSection, PackContent

TEMPLATES = Path(__file__).parent / "templates"
PAPER_SIZES = {"a4": "A4", "letter": "letter"}

_VERDICT_SYMBOL = {"on target": "✔", "watch": "◐", "act": "✖"}


def _f3(v: Any) -> str:
    return "—" if v is None else f"{float(v):.3f}"


def _signed3(v: Any) -> str:
    return "—" if v is None else f"{float(v):+.3f}"


def _dt(v: datetime | None) -> str:
    return "" if v is None else v.strftime("%Y-%m-%d %H:%M UTC")


def _d(v: datetime | date | None) -> str:
    return "" if v is None else v.strftime("%Y-%m-%d")


def _statusword(status: Any) -> str:
    return {"insufficient_data": "insufficient data", "undefined": "undefined"}.get(
        str(status), str(status)
    )


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        f3=_f3,
        signed3=_signed3,
        dt=_dt,
        d=_d,
        statusword=_statusword,
        vsymbol=lambda v: _VERDICT_SYMBOL.get(v, ""),
        vclass=lambda v: v.replace(" ", "-"),
    )
    return env


def _section_view(s: ModelSection) -> dict[str, Any]:
    """The section plus its charts drawn as SVG (charts are rendering, not content)."""
    view = {name: getattr(s, name) for name in s.__slots__}
    trends = [t for t in s.trends if any(p.estimate.value is not None for p in t.points)]
    view["trend_svgs"] = (
        [charts.trend_chart(trends, f"{s.name}: monthly KPIs with 95% CI")] if trends else []
    )
    view["control_svg"] = (
        charts.control_chart(s.control_charts, f"{s.name}: control chart by month")
        if s.control_charts
        else ""
    )
    fair_svgs = []
    for metric in ("sensitivity",):
        pts = [
            (
                f"{r.attribute}={r.group}",
                r.estimate.value,
                r.estimate.ci_low,
                r.estimate.ci_high,
                r.significant,
            )
            for r in s.fairness
            if r.metric == metric and r.estimate.value is not None
        ]
        overall = next((k.estimate.value for k in s.kpis if k.estimate.metric == metric), None)
        if pts:
            fair_svgs.append(
                charts.forest_chart(pts, overall, f"{s.name}: {metric} by subgroup", metric)
            )
    view["fairness_svgs"] = fair_svgs
    return view


def render_html(content: PackContent, paper: str = "a4") -> str:
    """The whole pack as one HTML string; ``paper`` sets the CSS @page size (a4 or letter)."""
    size = PAPER_SIZES[paper]
    css = (TEMPLATES / "pack.css").read_text(encoding="utf-8")
    window = f"{_d(content.window_start)} to {_d(content.window_end)} (end excluded)"
    css = (
        css.replace("var-page-size", size)
        .replace("var-version", content.vigil_version.replace('"', ""))
        .replace("var-window", window)
    )
    p = content.programme
    volume_svg = ""
    if p.volume_by_week:
        volume_svg = charts.bar_chart(
            [w for w, _ in p.volume_by_week],
            {"studies": [n for _, n in p.volume_by_week]},
            "Studies per week (all models)",
            "studies",
        )
    c = _ContentView(content, [_section_view(s) for s in content.sections])
    return _environment().get_template("pack.html.j2").render(c=c, css=css, volume_svg=volume_svg)


class _ContentView:
    """PackContent with sections replaced by their chart-carrying views."""

    def __init__(self, content: PackContent, sections: list[dict[str, Any]]) -> None:
        self._content = content
        self.sections = sections

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)
