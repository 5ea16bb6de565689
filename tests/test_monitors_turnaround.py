"""monitors.turnaround: medians and their CIs against scipy (quantile_test's CI, bootstrap),
groups (before/after go-live, flagged/not) against selections made here with pandas."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitors.results import Status
from monitors.turnaround import (
    compare_medians,
    median_ci,
    median_difference,
    model_times,
)


def _scipy_ci(x: np.ndarray) -> tuple[float, float]:
    ci = stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


@pytest.mark.parametrize("n", [1, 9, 10, 31, 200])
def test_median_ci_matches_scipy_at_small_n(n: int) -> None:
    x = np.random.default_rng(n).exponential(30, n)
    r = median_ci(x)
    assert r.n == n
    if n < 10:
        assert r.status is Status.INSUFFICIENT_DATA and r.ci_low is None and r.median is None
        return
    assert r.status is Status.OK
    assert (r.median, r.ci_low, r.ci_high) == pytest.approx((np.median(x), *_scipy_ci(x)))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=10, max_size=300)
)
def test_median_ci_property_against_scipy(values: list[float]) -> None:
    x = np.asarray(values)
    r = median_ci(x)
    assert r.status is Status.OK and r.n == len(x)
    assert r.median == pytest.approx(np.median(x))
    assert (r.ci_low, r.ci_high) == pytest.approx(_scipy_ci(x))
    assert r.ci_low <= r.median <= r.ci_high


def test_empty_and_nan_are_explicit() -> None:
    assert median_ci([]).status is Status.UNDEFINED
    r = median_ci([np.nan] * 5 + list(range(20)))
    assert r.n == 20 and r.median == pytest.approx(9.5)
    d = median_difference(median_ci([1.0, 2.0]), median_ci(range(50)), "go-live")
    assert d.status is Status.INSUFFICIENT_DATA and d.difference is None and not d.significant
    assert median_difference(median_ci([]), median_ci(range(50)), "x").status is Status.UNDEFINED


def test_difference_ci_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(3.5, 0.6, 400), rng.lognormal(3.2, 0.6, 500)
    d = median_difference(median_ci(a), median_ci(b), "go-live")
    assert d.difference == pytest.approx(np.median(b) - np.median(a))
    boot = stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.median(y, axis=axis) - np.median(x, axis=axis),
        n_resamples=4000,
        method="percentile",
        random_state=1,
    ).confidence_interval
    width = boot.high - boot.low
    assert d.ci_low == pytest.approx(boot.low, abs=0.15 * width)
    assert d.ci_high == pytest.approx(boot.high, abs=0.15 * width)
    assert d.significant == (boot.high < 0 or boot.low > 0)


def test_difference_ci_covers_the_true_shift() -> None:
    """Coverage near 95% on exponential data with a known shift of medians (seeded)."""
    rng = np.random.default_rng(8)
    true = 30 * np.log(2) - 20 * np.log(2)  # medians of Exp(30) and Exp(20): b - a = -true
    hits = 0
    for _ in range(300):
        a, b = rng.exponential(30, 150), rng.exponential(20, 150)
        d = median_difference(median_ci(a), median_ci(b), "x")
        hits += d.ci_low <= -true <= d.ci_high
    assert 0.90 <= hits / 300 <= 0.99


def _frame() -> pd.DataFrame:
    """Two models; m1 has two findings per study (one study, one turnaround); go-live 2026-03-01."""
    rng = np.random.default_rng(5)
    n = 600
    exam = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 120, n), unit="D")
    ta = rng.exponential(40, n)
    ta[rng.random(n) < 0.05] = np.nan
    read = np.where(rng.random(n) < 0.5, rng.exponential(8, n), np.nan)
    rows = []
    for i in range(n):
        calls = rng.random(2) < 0.3
        for model, finding, call in (
            ("m1", "a", calls[0]),
            ("m1", "b", calls[1]),
            ("m2", "c", calls[0]),
        ):
            rows.append(
                {
                    "study_id": i,
                    "site": "S1" if i % 2 else "S2",
                    "model": model,
                    "finding": finding,
                    "ai_call": bool(call),
                    "exam_at": exam[i],
                    "turnaround_min": ta[i],
                    "read_min": read[i],
                }
            )
    df = pd.DataFrame(rows)
    df["ai_call"] = df["ai_call"].astype("boolean")
    df["model"] = df["model"].astype("category")
    return df


def test_model_times_groups_against_pandas_and_scipy() -> None:
    df = _frame()
    go_live = date(2026, 3, 1)
    cut = pd.Timestamp(go_live, tz="UTC")
    since, until = pd.Timestamp("2026-04-01", tz="UTC"), pd.Timestamp("2026-05-01", tz="UTC")
    r = model_times(df, "m1", go_live, since=since, until=until, before_days=30)
    studies = (
        df[df["model"] == "m1"]
        .groupby("study_id")
        .agg(exam_at=("exam_at", "first"), t=("turnaround_min", "first"), flag=("ai_call", "any"))
    )
    studies = studies[studies["t"].notna()]
    before = studies[(studies["exam_at"] < cut) & (studies["exam_at"] >= cut - pd.Timedelta("30D"))]
    after = studies[(studies["exam_at"] >= since) & (studies["exam_at"] < until)]
    groups = {
        "before go-live": (r.go_live_change.a, before),
        "after go-live": (r.go_live_change.b, after),
        "AI-flagged": (r.flag_effect.b, after[after["flag"]]),
        "not flagged": (r.flag_effect.a, after[~after["flag"]]),
    }
    for name, (m, part) in groups.items():
        x = part["t"].to_numpy()
        assert m.group == name and m.n == len(x) and m.status is Status.OK
        assert (m.median, m.ci_low, m.ci_high) == pytest.approx((np.median(x), *_scipy_ci(x)))
    assert r.go_live_change.difference == pytest.approx(
        np.median(after["t"]) - np.median(before["t"])
    )
    json.dumps(r.to_dict())  # JSON-ready
    assert r.to_dict()["go_live"] == "2026-03-01"


def test_without_go_live_and_the_dashboard_table() -> None:
    df = _frame()
    r = model_times(df, "m2", None, "read_min")
    assert r.go_live_change is None
    m2 = df[(df["model"] == "m2") & df["read_min"].notna()]
    assert r.n_measured == len(m2)
    flagged = m2[m2["ai_call"].astype(bool)]["read_min"].to_numpy()
    assert r.flag_effect.b.median == pytest.approx(np.median(flagged))
    table = compare_medians(df, {"m1": date(2026, 3, 1), "m2": None})
    assert list(table["model"]) == ["m1"] * 4 + ["m2"] * 2
    assert list(table["group"][:4]) == [
        "before go-live",
        "after go-live",
        "AI-flagged",
        "not flagged",
    ]
    after = df[(df["model"] == "m2") & df["turnaround_min"].notna()]
    row = table[(table["model"] == "m2") & (table["group"] == "not flagged")].iloc[0]
    x = after[~after["ai_call"].astype(bool)]["turnaround_min"].to_numpy()
    assert row["n"] == len(x) and row["median_min"] == pytest.approx(np.median(x))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(_scipy_ci(x))


def test_unknown_model_is_undefined_not_an_error() -> None:
    r = model_times(
        _frame(), "absent", date(2026, 3, 1), since=pd.Timestamp("2026-04-01", tz="UTC")
    )
    assert r.n_cases == 0 and r.flag_effect.status is Status.UNDEFINED
    assert r.go_live_change.a.status is Status.UNDEFINED
