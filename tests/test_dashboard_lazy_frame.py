"""Pages render from the stored monitor run without the case frame; case-level sections load it
in the background and show an explicit loading state meanwhile (never block a render)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine
from test_dashboard_helpers import app_as, make_store, need_results, open_page, plotly_specs

from dashboard import data
from dashboard.widgets import LOADING_TEXT


def _infos(at) -> str:
    return " ".join(i.value for i in at.info)


def test_monitor_pages_never_load_the_frame(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vigil.caseframe

    results = need_results(make_store(engine))
    # the real loader, held at a gate so that the test decides when the frame arrives
    gate = threading.Event()
    real = vigil.caseframe.load_case_frame
    calls: list[int] = []

    def held(eng, **kw):
        calls.append(1)
        gate.wait(60)
        return real(eng, **kw)

    monkeypatch.setattr(vigil.caseframe, "load_case_frame", held)
    monkeypatch.setattr(data, "LOAD_FRAME_IN_BACKGROUND", True)
    data.forget_frames()
    try:
        _check_pages(results, gate, calls)
    finally:
        gate.set()
        data.forget_frames()


def _check_pages(results: dict, gate: threading.Event, calls: list[int]) -> None:
    from monitors.drift import drifted_findings

    at = app_as("quality_officer")
    for page in ("overview", "fairness", "alerts"):
        open_page(at, page)
        assert not data.frame_loading_started(), page
    # drift: findings from the run; the distribution waits for the frame, visibly
    open_page(at, "drift")
    block = results["models"][at.selectbox[0].value]["drift"]
    assert at.metric[0].value == str(len(drifted_findings(block)))
    assert LOADING_TEXT in _infos(at)
    # performance: the monthly trend and control chart from the run, what-if loading
    open_page(at, "performance")
    specs = plotly_specs(at)
    assert specs and any(t.get("mode") == "lines+markers" for t in specs[0]["data"])
    assert LOADING_TEXT in _infos(at)
    assert not [s for s in at.slider]  # no what-if until the cases are in
    # the weekly trend comes from the run as well: switching period never waits for cases
    at.radio[0].set_value("W").run()
    assert not at.exception and not data.frame_ready()
    model = next(sb.value for sb in at.selectbox if sb.value in results["models"])
    metric = next(sb.value for sb in at.selectbox if sb.value in data.METRICS_SHOWN)
    weeks = results["models"][model]["trends"]["week"]
    ok_weeks = [w["period"] for w in weeks if w["metrics"][metric]["status"] == "ok"]
    lines = [t for t in plotly_specs(at)[0]["data"] if t.get("mode") == "lines+markers"]
    if ok_weeks:
        assert list(lines[0]["x"]) == ok_weeks
    else:  # a small store: every week below the minimum n, said in words, no empty chart
        assert not lines and any("too few cases" in w.value for w in at.warning)
    # discordance needs every case: a loading state, not a blocked render
    t0 = time.monotonic()
    open_page(at, "discordance")
    assert time.monotonic() - t0 < 30 and LOADING_TEXT in _infos(at)
    assert len(calls) == 1  # one load for every page that asked
    # the frame arrives: the same session now shows the cases
    gate.set()
    deadline = time.monotonic() + 60
    while not data.frame_ready():
        assert time.monotonic() < deadline, "frame never loaded"
        time.sleep(0.05)
    at.run()
    assert not at.exception
    assert LOADING_TEXT not in _infos(at)
    assert "Discordant cases to review" in {m.label for m in at.metric}
    assert len(calls) == 1
