"""Pure parts of the pack: KPI assessment and verdicts, alert counting at the window's edges,
and charts that stay readable in black and white."""

from __future__ import annotations

import re
from datetime import timedelta

from statsmodels.stats.proportion import proportion_confint

from monitors.results import Estimate, Status
from reports.charts import control_chart, trend_chart
from reports.content import alert_entries, assess_kpi, verdict
from reports.pack import AlertCounts, ControlChart, SeriesPoint, Trend
from reports.window import parse_period


def _est(k: int, n: int, metric: str = "sensitivity") -> Estimate:
    lo, hi = proportion_confint(k, n, method="wilson")
    return Estimate(metric, k / n, float(lo), float(hi), n, Status.OK, "wilson", k, 30)


def test_kpi_levels_follow_the_ci_not_the_point():
    # 170/200 = 0.85, Wilson CI about 0.79-0.89: entirely below a 0.90 target -> act
    assert assess_kpi("Sensitivity", _est(170, 200), None, 0.90).level == "act"
    # 26/30 = 0.867, CI about 0.70-0.95 straddles 0.90 -> watch only
    k = assess_kpi("Sensitivity", _est(26, 30), None, 0.90)
    assert k.level == "watch" and "point estimate below target" in k.assessment
    assert assess_kpi("Sensitivity", _est(190, 200), None, 0.90).level == "ok"
    # the performance monitor's significant decline vs baseline -> act, with its p
    k = assess_kpi(
        "Sensitivity",
        _est(190, 200),
        0.97,
        0.90,
        {"metric": "sensitivity", "below_baseline": True, "p_value": 0.001},
    )
    assert k.level == "act" and "significant decline vs baseline (p=0.001)" in k.assessment
    short = Estimate("sensitivity", None, None, None, 12, Status.INSUFFICIENT_DATA, "wilson")
    k = assess_kpi("Sensitivity", short, None, 0.9)
    assert (k.level, k.assessment) == ("watch", "insufficient data")


def test_verdict_words_and_reasons():
    ok = [assess_kpi("Sensitivity", _est(190, 200), 0.9, 0.9)]
    level, why = verdict(ok, AlertCounts(), [], [], [], n_labelled=200)
    assert level == "on target" and any("meet" in r for r in why)
    bad = [assess_kpi("Sensitivity", _est(170, 200), None, 0.9)]
    level, why = verdict(bad, AlertCounts(), [], [], [], n_labelled=200)
    assert level == "act" and "0.850" in why[0] and "target 0.900" in why[0]
    level, why = verdict(ok, AlertCounts(opened=1, open_at_end=1), [], [], [], n_labelled=200)
    assert level == "watch" and "1 alert(s) open" in why[0]


def test_alert_events_counted_inside_the_half_open_window():
    w = parse_period("2026-10")
    before, start, last = w.start - timedelta(seconds=1), w.start, w.end - timedelta(seconds=1)

    def alert(i, first, ack=None, res=None):
        return {
            "id": i,
            "kind": "drift",
            "severity": "warning",
            "status": "open",
            "first_seen": first,
            "acknowledged_at": ack,
            "resolved_at": res,
        }

    rows = [
        alert(1, before, ack=start),  # opened before, acknowledged on the first second
        alert(2, start, res=last),  # opened and resolved inside
        alert(3, last, ack=w.end),  # acknowledged exactly at the end: next month
        alert(4, before, res=w.end + timedelta(days=2)),  # still open at the window's end
    ]
    entries, counts = alert_entries(rows, w)
    assert (counts.opened, counts.acknowledged, counts.resolved) == (2, 1, 1)
    assert counts.open_at_end == 3
    assert [e.opened_in_period for e in entries] == [False, True, True, False]


def _dashes(svg: str) -> set[str]:
    return set(re.findall(r"stroke-dasharray:\s*([0-9.,\s]+)", svg))


def test_charts_differ_by_line_style_and_marker_not_colour_alone():
    pts = [SeriesPoint(f"2026-0{i}", _est(80 + i, 100)) for i in range(1, 7)]
    pts2 = [SeriesPoint(f"2026-0{i}", _est(90 - i, 100, "specificity")) for i in range(1, 7)]
    svg = trend_chart([Trend("sensitivity", pts, 0.9, 0.85), Trend("specificity", pts2)], "t")
    assert svg.startswith("<svg") and "sensitivity (95% CI)" in svg  # text stays text
    assert len(_dashes(svg)) >= 2  # solid + dashed series, dashed baseline, dotted target
    assert "http" not in svg.replace("http://www.w3.org/", "")
    cc = [
        ControlChart(
            "a",
            "sensitivity CUSUM",
            [p.label for p in pts],
            [0, 1, 2, 3, 5, 6],
            upper=4.0,
            signals=[4, 5],
        ),
        ControlChart(
            "b", "specificity CUSUM", [p.label for p in pts], [0, 0, 1, 0, 0, 1], upper=4.0
        ),
    ]
    svg = control_chart(cc, "c")
    assert len(_dashes(svg)) >= 2
    # ids are scoped per chart so several charts can share one HTML page
    ids = re.findall(r'id="([^"]+)"', svg)
    assert ids and len({i.split("-", 1)[0] for i in ids}) == 1
    assert "<metadata>" not in svg  # no creation date, no RDF URLs


def test_time_rows_mark_measured_assumed_and_missing_data():
    """Turnaround rows: medians from monitors.turnaround (checked against numpy here), a model
    without OBR-32 read times shows "not fed", the ROI's read-time saving is ASSUMED, and a
    model without go-live date or with too few studies says so instead of a number."""
    from datetime import UTC, date, datetime

    import numpy as np
    import pandas as pd

    from reports.content import turnaround_and_read

    w = parse_period("2026-05")
    rng = np.random.default_rng(4)
    n = 400
    exam = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 119, n), "D")
    frame = pd.DataFrame(
        {
            "study_id": np.arange(n),
            "model": pd.Categorical(["m1"] * 300 + ["m2"] * 100),
            "ai_call": pd.array(rng.random(n) < 0.3, dtype="boolean"),
            "exam_at": exam,
            "turnaround_min": rng.exponential(50, n),
            "read_min": np.nan,
        }
    )
    models = [
        {"name": "m1", "go_live_date": date(2026, 3, 15)},
        {"name": "m2", "go_live_date": None},
        {"name": "m3", "go_live_date": date(2026, 4, 1)},  # no cases: no rows
    ]
    rows, note = turnaround_and_read(frame, models, w, None)
    by = {(r.model, r.measure, r.group): r for r in rows}
    m1 = frame[(frame["model"] == "m1") & (frame["exam_at"] >= w.start)]
    m1 = m1[m1["exam_at"] < w.end]
    after = by[("m1", "turnaround", "after go-live")]
    assert after.value == f"{np.median(m1['turnaround_min']):.1f}" and after.n == str(len(m1))
    assert after.basis == "measured"
    assert by[("m1", "read time", "—")].value == "not fed"
    assert by[("m2", "turnaround", "go-live")].value == "no date"
    assert not any(r.model == "m3" for r in rows)
    saving = by[("all models", "read-time saving", "per study")]
    assert saving.basis == "assumed"
    assert "Read time is not fed for m1, m2" in note
    # too few studies: the status in words, never a number
    tiny = frame[(frame["model"] == "m1") & (frame["exam_at"] < datetime(2026, 5, 3, tzinfo=UTC))]
    rows, _ = turnaround_and_read(tiny, models[:1], w, None)
    by = {(r.model, r.measure, r.group): r for r in rows}
    assert by[("m1", "turnaround", "after go-live")].value == "insufficient data"
    assert by[("m1", "turnaround", "after − before")].value == "not estimable"
