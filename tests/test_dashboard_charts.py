"""The plotly figures themselves: labelled axes with units, Okabe-Ito colours per model, CI
bands on the trends, alarm markers on the control chart (read from AppTest's chart specs).

The palette is Okabe & Ito (2008), written out here from the publication, not imported."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from test_dashboard_helpers import (
    app_as,
    make_store,
    need_results,
    open_page,
    plotly_specs,
    run_monitors_into,
)
from test_dashboard_monitoring_pages import _decode

from vigil.store.tables import AIModel, AIResult, FinalRead, Study

# Okabe & Ito, "Color Universal Design" (2008): blue, orange, bluish green, reddish purple...
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
VERMILLION = "#D55E00"
UNITS = ("(0-1)", "0-1", "per study", "SD units", "(score)", "exam date", "share of cases")


def _titles(spec: dict) -> tuple[str, str]:
    lay = spec["layout"]
    return (
        ((lay.get("xaxis") or {}).get("title") or {}).get("text") or "",
        ((lay.get("yaxis") or {}).get("title") or {}).get("text") or "",
    )


def _has_unit(title: str) -> bool:
    return any(u.lower() in title.lower() for u in UNITS)


def _degrade_latest_months(engine: Engine, model: str, days: int = 60) -> None:
    """Real data change: AI-negative cases of the last ``days`` read as positive by the
    radiologist (misses), so that the model's sensitivity falls and the monitors alarm."""
    with engine.begin() as c:
        newest = c.execute(select(Study.exam_started_at).order_by(Study.id.desc())).first()
        last = c.execute(
            select(Study.exam_started_at).order_by(Study.exam_started_at.desc()).limit(1)
        ).scalar_one()
        assert newest is not None
        ids = (
            c.execute(
                select(AIResult.study_id)
                .join(AIModel, AIModel.id == AIResult.model_id)
                .join(Study, Study.id == AIResult.study_id)
                .where(
                    AIModel.name == model,
                    AIResult.score < 0.35,
                    Study.exam_started_at >= last - timedelta(days=days),
                )
            )
            .scalars()
            .all()
        )
        assert len(ids) > 20
        c.execute(
            update(FinalRead)
            .where(FinalRead.study_id.in_(ids), FinalRead.is_current == True)  # noqa: E712
            .values(label="positive")
        )


def test_charts_are_labelled_coloured_banded_and_alarmed(engine: Engine) -> None:
    make_store(engine, 3000, monitor=False)
    model = "neurovue-ich"
    _degrade_latest_months(engine, model)
    results = need_results(run_monitors_into(engine))
    names = sorted(results["models"])
    colour = {n: OKABE_ITO[i] for i, n in enumerate(names)}
    assert len(set(colour.values())) == len(names)

    # overview: per-model marker colours, labelled value axis with its unit
    at = open_page(app_as("coe_member"), "overview")
    spec = plotly_specs(at)[0]
    x_title, y_title = _titles(spec)
    assert _has_unit(x_title) and y_title, (x_title, y_title)
    for tr in spec["data"]:
        if tr.get("mode") == "markers" and isinstance(tr["marker"].get("color"), list):
            for label, col in zip(tr["y"], tr["marker"]["color"], strict=True):
                assert col == colour[label.split(" · ")[0]], (label, col)

    # performance: every chart has both axis titles, value axes with units
    at = open_page(app_as("coe_member"), "performance")
    at.selectbox[0].select(model).run()
    specs = plotly_specs(at)
    assert len(specs) >= 3  # trend, control chart(s), per site, what-if
    for s in specs:
        xt, yt = _titles(s)
        assert xt and yt, (xt, yt)
        assert _has_unit(xt) or _has_unit(yt), (xt, yt)
    # the trend: a filled CI band behind the line, in the model's Okabe-Ito colour
    trend = specs[0]["data"]
    line = next(t for t in trend if t.get("mode") == "lines+markers")
    band = next(t for t in trend if t.get("fill") in ("toself", "tonexty"))
    assert line["line"]["color"] == colour[model]
    r, g, b = (int(colour[model][i : i + 2], 16) for i in (1, 3, 5))
    assert band["fillcolor"].startswith(f"rgba({r},{g},{b},")
    xs, ys = _decode(line["x"]), _decode(line["y"])
    bx, by = _decode(band["x"]), _decode(band["y"])
    assert bx == xs + xs[::-1]  # upper edge forward, lower edge back: a closed band
    high, low = by[: len(xs)], by[len(xs) :][::-1]
    assert all(lo <= v <= hi for lo, v, hi in zip(low, ys, high, strict=True))
    assert any(hi - lo > 0.01 for lo, hi in zip(low, high, strict=True))
    # the other model's line is in its own colour
    other = next(n for n in names if n != model)
    at.selectbox[0].select(other).run()
    line2 = next(t for t in plotly_specs(at)[0]["data"] if t.get("mode") == "lines+markers")
    assert line2["line"]["color"] == colour[other] != colour[model]

    # control chart: a vermillion marker on every period the stored chart alarmed
    at.selectbox[0].select(model).run()
    charts = results["models"][model]["control_chart"]
    alarmed = {c["metric"]: [p["period"] for p in c["points"] if p.get("alarm")] for c in charts}
    assert alarmed.get("sensitivity"), f"the degraded sensitivity did not alarm: {alarmed}"
    cc_specs = [s for s in plotly_specs(at) if any(t.get("name") == "alarm" for t in s["data"])]
    assert len(cc_specs) == len(charts)
    seen = {}
    for s in cc_specs:
        marks = next(t for t in s["data"] if t.get("name") == "alarm")
        assert marks["mode"] == "markers" and marks["marker"]["color"] == VERMILLION
        metric = s["layout"]["title"]["text"].split(" ")[0]
        seen[metric] = _decode(marks.get("x", []))
        assert "SD units" in _titles(s)[1]
    assert seen == alarmed

    # drift and fairness charts: labelled axes, values with units
    for page, role in (("drift", "coe_member"), ("fairness", "coe_member")):
        at = open_page(app_as(role), page)
        for s in plotly_specs(at):
            xt, yt = _titles(s)
            assert xt and yt and (_has_unit(xt) or _has_unit(yt)), (page, xt, yt)


@pytest.fixture(autouse=True)
def _no_background_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import data

    monkeypatch.setattr(data, "LOAD_FRAME_IN_BACKGROUND", False)
