"""Data-drift calibration: silent on stable data at any n, loud on a real shift, and why
Evidently's default decision cannot be used as is."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from monitor_frames import synthetic_frame
from scipy import stats

from monitors.drift import (
    DriftConfig,
    chi2_homogeneity,
    drift_scan,
    drifted_findings,
    month_windows,
    psi,
    psi_null_quantile,
)

REFERENCE = ["2026-01", "2026-02"]


def _scan(frame: pd.DataFrame, **kw):
    return drift_scan(frame, windows=month_windows(frame["exam_at"]), reference=REFERENCE, **kw)


def _alarms(block) -> list[tuple[str, str, str]]:
    return [
        (s["subgroup"], w["window"], c["column"])
        for s in block["scopes"]
        for w in s["windows"]
        for c in w["columns"]
        if c["drifted"]
    ]


@pytest.mark.parametrize(("n", "repeats"), [(1_000, 8), (10_000, 3), (100_000, 1)])
def test_no_alarm_on_stable_data_at_any_size(n: int, repeats: int) -> None:
    for seed in range(repeats):
        block = _scan(synthetic_frame(n, seed=100 + seed))
        # 10 months x (all sites + 4 sites) x 8 columns tested each time
        assert block["n_tests"] >= 300
        assert _alarms(block) == [], f"false alarm at n={n}, seed={seed}"


def test_family_wise_false_alarm_rate_is_bounded() -> None:
    """40 stable scans of 1,500 rows (each ~330 tests): the design says <= 1% of scans alarm."""
    rng = np.random.default_rng(7)
    n, scans, alarmed = 1_500, 40, 0
    months = np.array([f"2026-{m:02d}" for m in range(1, 13)])
    for _ in range(scans):
        frame = pd.DataFrame(
            {
                "age": rng.integers(18, 95, n).astype("float64"),
                "score": rng.beta(1, 8, n),
                "sex": rng.choice(["F", "M"], n),
                "site": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
                "scanner_model": rng.choice(list("abcde"), n),
            }
        )
        win = pd.Series(months[rng.integers(0, 12, n)])
        block = drift_scan(frame, windows=win, reference=REFERENCE)
        alarmed += bool(_alarms(block))
    assert alarmed <= 2  # binomial(40, 0.01): P(X > 2) < 0.001


def test_scanner_change_at_one_site_alarms_there_from_its_first_month() -> None:
    frame = synthetic_frame(20_000, seed=3, scanner_change=("EMC", "2026-07"))
    block = _scan(frame)
    found = {(f["subgroup"], f["column"]): f for f in drifted_findings(block)}
    f = found[("site=EMC", "scanner_model")]
    assert f["windows"][0] == "2026-07"
    assert f["windows"] == [f"2026-{m:02d}" for m in range(7, 13)]
    assert ("site=EMC", "scanner_manufacturer") in found
    # nothing drifts at the other sites, and no other column drifts anywhere
    assert {s for s, _ in found} <= {"", "site=EMC"}
    assert {c for _, c in found} == {"scanner_model", "scanner_manufacturer"}
    latest = f["latest"]
    assert latest["p_value"] < latest["p_threshold"]
    assert latest["psi"] >= latest["psi_threshold"] >= DriftConfig().min_psi


def test_age_shift_is_found_but_a_trivial_shift_on_a_huge_sample_is_not() -> None:
    rng = np.random.default_rng(11)
    n = 200_000
    win = pd.Series(np.where(np.arange(n) < n // 2, "2026-01", "2026-03"))
    base = rng.normal(60, 15, n)
    trivial = pd.DataFrame({"age": np.where(win == "2026-03", base + 0.6, base)})  # 0.04 SD
    real = pd.DataFrame({"age": np.where(win == "2026-03", base + 8.0, base)})  # 0.53 SD
    cols = (["age"], [])
    t = drift_scan(trivial, windows=win, reference=["2026-01"], columns=cols, by_site=False)
    r = drift_scan(real, windows=win, reference=["2026-01"], columns=cols, by_site=False)
    tc = t["scopes"][0]["windows"][0]["columns"][0]
    rc = r["scopes"][0]["windows"][0]["columns"][0]
    # the trivial shift is highly significant at this n, yet far below the effect-size floor
    assert tc["p_value"] < 1e-6 and tc["psi"] < 0.01 and not tc["drifted"]
    assert rc["drifted"] and rc["psi"] > 0.2


def test_small_windows_are_insufficient_not_alarms() -> None:
    win = pd.Series(["2026-01"] * 500 + ["2026-02"] * 10)
    frame = pd.DataFrame({"sex": ["F"] * 250 + ["M"] * 250 + ["M"] * 10})
    block = drift_scan(frame, windows=win, reference=["2026-01"], by_site=False)
    col = block["scopes"][0]["windows"][0]["columns"][0]
    assert col["status"] == "insufficient_data" and not col["drifted"]


# --- the statistics against independent implementations ---------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(20, 400), min_size=2, max_size=6),
    st.lists(st.integers(20, 400), min_size=2, max_size=6),
)
def test_chi2_matches_scipy_contingency(a: list[int], b: list[int]) -> None:
    k = min(len(a), len(b))
    ref, cur = np.array(a[:k]), np.array(b[:k])
    table = np.vstack([ref, cur])
    expected = table.sum(0) * table.sum(1, keepdims=True) / table.sum()
    assume(expected.min() >= 5)  # below that our test merges cells (scipy does not)
    stat, dof, p = chi2_homogeneity(ref, cur)
    s2, p2, dof2, _ = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert dof == dof2
    assert stat == pytest.approx(s2, rel=1e-9)
    assert p == pytest.approx(p2, rel=1e-6, abs=1e-300)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=2, max_size=8), st.integers(0, 2**32 - 1))
def test_psi_properties(counts: list[int], seed: int) -> None:
    ref = np.array(counts)
    other = np.random.default_rng(seed).permutation(ref)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    v = float(psi(ref, other))
    assert v >= -1e-12
    assert v == pytest.approx(float(psi(other, ref)), rel=1e-9, abs=1e-12)  # symmetric
    # the textbook formula sum (c - r) ln(c / r) on smoothed proportions
    pr = (ref + 0.5) / (ref.sum() + 0.5 * len(ref))
    pc = (other + 0.5) / (other.sum() + 0.5 * len(ref))
    assert v == pytest.approx(float(np.sum((pc - pr) * np.log(pc / pr))), rel=1e-9, abs=1e-12)


def test_simulated_null_quantile_agrees_with_the_chi2_asymptote() -> None:
    """For large n, n_eff * PSI ~ chi2(k-1): the simulation must land on the same quantile."""
    rng = np.random.default_rng(5)
    ref = np.array([4000, 3000, 2000, 1000])
    cur = np.array([2000, 1500, 1000, 500])
    q = psi_null_quantile(ref, cur, q=0.99, draws=20_000, rng=rng)
    n_eff = 1 / (1 / ref.sum() + 1 / cur.sum())
    assert q == pytest.approx(stats.chi2.ppf(0.99, 3) / n_eff, rel=0.08)


# --- Evidently's default would fire -------------------------------------------------------------


def _evidently_fires(ref: pd.DataFrame, cur: pd.DataFrame, num: list[str], cat: list[str]) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    snap = Report([ValueDrift(column=c) for c in [*num, *cat]]).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    fired = 0
    for m in snap.dict()["metrics"]:
        method, thr, value = m["config"]["method"], m["config"]["threshold"], float(m["value"])
        fired += (value < thr) if "p_value" in method else (value >= thr)
    return fired


def test_evidently_default_fires_on_stable_data_where_calibrated_drift_does_not() -> None:
    rng = np.random.default_rng(2)

    def make(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(60, 15, n).round(),
                "site": rng.choice(list("ABCD"), n),
                "scanner_model": rng.choice(list("abcdefgh"), n),
            }
        )

    num, cat = ["age"], ["site", "scanner_model"]
    ev_small = ev_large = ours = 0
    for _ in range(2):
        # (a) reference <= 1,000 rows: Evidently tests p < 0.05 per column, no multiplicity
        ref, cur = make(800), make(300)
        ev_small += _evidently_fires(ref, cur, num, cat)
        # (b) reference > 1,000 rows: a fixed distance 0.1, whatever the window's size
        ref2, cur2 = make(5000), make(40)
        ev_large += _evidently_fires(ref2, cur2, num, cat)
        for r, c in ((ref, cur), (ref2, cur2)):
            both = pd.concat([r, c], ignore_index=True)
            win = pd.Series(["2026-01"] * len(r) + ["2026-02"] * len(c))
            block = drift_scan(both, windows=win, reference=["2026-01"], by_site=False)
            ours += len(_alarms(block))
            # our reproduction of Evidently's rule is reported beside each column
            assert all(
                col["evidently_default"] is not None
                for col in block["scopes"][0]["windows"][0]["columns"]
            )
    assert ev_large >= 2, "Evidently's fixed distance threshold should flag small windows"
    assert ev_small + ev_large >= 3
    assert ours == 0
