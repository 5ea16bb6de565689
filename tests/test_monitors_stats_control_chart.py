"""Control charts: design values against published tables, the in-control false-alarm rate on
simulated stable streams (a bounded Monte Carlo), and detection of a stated shift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitors.control_chart import (
    bernoulli_arl,
    bernoulli_cusum,
    control_chart,
    cusum_arl,
    cusum_h,
    ewma_arl,
    ewma_L,
)
from monitors.results import Status


def test_siegmund_design_matches_published_cusum_arls() -> None:
    """Montgomery, Introduction to Statistical Quality Control (Table 9.3 / 9.2 discussion):
    a two-sided tabular CUSUM with k = 1/2 has ARL0 = 465 at h = 5 and 168 at h = 4 (each side
    twice that). Siegmund's approximation, our design method, is within 2% of both."""
    assert cusum_arl(0.5, 5.0) / 2 == pytest.approx(465, rel=0.02)
    assert cusum_arl(0.5, 4.0) / 2 == pytest.approx(168, rel=0.02)
    h = cusum_h(0.5, 500)
    assert cusum_arl(0.5, h) == pytest.approx(500, rel=1e-9)
    assert 4.0 < h < 5.0


def test_ewma_design_matches_lucas_saccucci() -> None:
    """Lucas & Saccucci (1990) / Montgomery Table 9.11: two-sided EWMA with ARL0 = 500 uses
    L = 2.962 at lambda = 0.20, L = 2.814 at lambda = 0.10 and L = 3.054 at lambda = 0.40."""
    for lam, L in [(0.2, 2.962), (0.1, 2.814), (0.4, 3.054)]:
        assert ewma_arl(lam, L, 0.0, one_sided=False) == pytest.approx(500, rel=0.01)
    assert ewma_L(0.2, 500, one_sided=False) == pytest.approx(2.962, abs=0.005)


def _arl_from_long_stream(x: np.ndarray, n: np.ndarray, **kw) -> float:
    chart = control_chart(x, n, target=0.9, **kw)
    # after each alarm the chart restarts, so periods / alarms estimates the in-control ARL
    return len(x) / max(1, len(chart.alarms))


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "cusum", "direction": "lower"},
        {"kind": "ewma", "direction": "lower"},
        {"kind": "cusum", "direction": "two-sided"},
    ],
    ids=["cusum-lower", "ewma-lower", "cusum-two-sided"],
)
def test_in_control_false_alarm_rate_is_near_the_stated_rate(kw) -> None:
    """100,000 stable periods (about 200 expected false alarms at ARL0 = 500), sensitivity 0.9
    with a varying number of positives per period (40..400): the observed ARL must lie within
    [375, 700], i.e. the stated false-alarm rate 1/500 holds to about +/-30%."""
    rng = np.random.default_rng(20261127)
    periods = 100_000
    n = rng.integers(40, 400, periods)
    x = rng.binomial(n, 0.9)
    arl = _arl_from_long_stream(x, n, arl0=500, **kw)
    assert 375 <= arl <= 700, arl


def test_detects_the_stated_shift_within_the_stated_delay() -> None:
    """A sensitivity drop from 0.90 to 0.85 at 200 positives per period is a shift of about
    2.2 SD on the chart's scale; the design (k = 0.5, ARL0 = 500) expects detection in about 3
    periods (Siegmund). Over 300 simulated streams: median delay <= 4 periods and >= 95%
    detected within 8."""
    rng = np.random.default_rng(1)
    change, after = 20, 30
    delays = []
    for _ in range(300):
        n = np.full(change + after, 200)
        p = np.r_[np.full(change, 0.90), np.full(after, 0.85)]
        chart = control_chart(rng.binomial(n, p), n, target=0.9, arl0=500)
        late = [i for i, pt in enumerate(chart.points) if pt.alarm and i >= change]
        delays.append(late[0] - change + 1 if late else np.inf)
    delays = np.array(delays)
    expected = cusum_arl(0.5, cusum_h(0.5, 500), 2.2)
    assert expected < 4
    assert np.median(delays) <= 4
    assert np.mean(delays <= 8) >= 0.95


def test_chart_reports_parameters_and_method() -> None:
    rng = np.random.default_rng(2)
    n = np.full(24, 150)
    chart = control_chart(
        rng.binomial(n, 0.92),
        n,
        periods=[f"2026-{m:02d}" for m in range(1, 25)],
        target=0.92,
        target_source="model card baseline",
    )
    p = chart.parameters
    assert p.arl0 == 500 and p.k == 0.5 and p.h == pytest.approx(cusum_h(0.5, 500))
    assert "Siegmund" in p.method and "500" in chart.description
    assert chart.target_source == "model card baseline"
    assert all(pt.upper_limit == p.h for pt in chart.points)
    d = json.loads(json.dumps(chart.to_dict()))
    assert d["parameters"]["kind"] == "cusum" and d["status"] == "ok"


def test_small_periods_are_not_charted() -> None:
    chart = control_chart([9, 0, 90], [10, 0, 100], target=0.9, min_n=30)
    assert [pt.status for pt in chart.points] == [
        Status.INSUFFICIENT_DATA,
        Status.UNDEFINED,
        Status.OK,
    ]
    assert chart.points[0].z is None and chart.points[1].value is None


def test_target_from_reference_periods_and_missing_target() -> None:
    chart = control_chart([90, 88, 91, 70], [100] * 4, reference_periods=3)
    assert chart.target == pytest.approx((90 + 88 + 91) / 300)
    assert "reference" in chart.target_source
    none = control_chart([90, 88], [100, 100])
    assert none.status is Status.UNDEFINED and none.alarms == []


def test_a_sudden_large_drop_alarms_at_once() -> None:
    n = np.full(10, 300)
    x = np.r_[np.full(6, 270), np.full(4, 200)]  # 0.90 -> 0.67
    for kind in ("cusum", "ewma"):
        chart = control_chart(x, n, target=0.9, kind=kind)
        assert chart.first_alarm == "6", kind


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        control_chart([5], [4], target=0.9)
    with pytest.raises(ValueError):
        control_chart([1], [4], target=0.9, kind="shewhart")


def test_bernoulli_cusum_exact_arl_matches_simulation() -> None:
    """Per-case chart: the Markov-chain ARL is exact for the integer-step chart, so a long
    simulated stable stream (100,000 cases, ~200 false alarms expected at ARL0 ~ 500) must show
    an observed ARL within 25% of it."""
    rng = np.random.default_rng(5)
    y = (rng.random(100_000) < 0.9).astype(int)
    chart = bernoulli_cusum(y, p0=0.9, drop=0.05, arl0=500)
    exact = chart.parameters.arl0
    step_h = round(chart.parameters.h / -np.log(0.85 / 0.9))  # the limit in integer steps
    assert exact >= 500 and exact == pytest.approx(bernoulli_arl(0.9, 7, step_h))
    observed = len(y) / len(chart.alarms)
    assert observed == pytest.approx(exact, rel=0.25)


def test_bernoulli_arl_small_case_by_hand() -> None:
    """h = 1, one failure step: the first failure alarms, so the run length is geometric with
    mean 1 / (1 - p)."""
    assert bernoulli_arl(0.9, 1, 1) == pytest.approx(10.0)
    assert bernoulli_arl(0.8, 3, 2) == pytest.approx(5.0)  # any failure jumps past h


def test_bernoulli_cusum_detects_a_drop() -> None:
    rng = np.random.default_rng(6)
    delays = []
    for _ in range(100):
        y = np.r_[rng.random(300) < 0.9, rng.random(1200) < 0.75].astype(int)
        chart = bernoulli_cusum(y, p0=0.9, drop=0.05, arl0=5000)
        late = [i for i, pt in enumerate(chart.points) if pt.alarm and i >= 300]
        delays.append(late[0] - 300 + 1 if late else np.inf)
    # a drop to 0.75 (3x the design drop) is caught well within the design's delay for 0.85
    assert np.median(delays) < chart.parameters.arl1
    assert np.mean(np.isfinite(delays)) == 1.0
