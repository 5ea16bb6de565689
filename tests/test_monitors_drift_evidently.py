"""Data drift against Evidently 0.7.23 itself: the default rule we report beside each column is
Evidently's own figure (values and decisions), and the decision of record is Evidently's PSI
stat test (the one ``ValueDrift(method="psi")`` runs) at a threshold calibrated for the n."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")

from evidently import DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests import psi_stat_test
from evidently.legacy.core import ColumnType
from evidently.metrics import ValueDrift

from monitors.alerting import drift_alerts
from monitors.drift import (
    DriftConfig,
    _encode_categorical,
    _encode_numeric,
    _evidently_default,
    drift_scan,
    evidently_psi_counts,
    evidently_psi_value,
)

NUM = ["age", "score", "dose", "flag"]
CAT = ["sex", "site", "scanner"]
# Evidently's display names of the tests its default rule picks -> the names we report
EV_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Jensen-Shannon distance": "jensenshannon",
    "Wasserstein distance (normed)": "wasserstein",
}


def _make(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    scanner = rng.choice(["a", "b", "c", "d", "e"], n, p=[0.3, 0.3, 0.2, 0.1, 0.1]).astype(object)
    scanner[rng.random(n) < 0.05] = None  # missing values: Evidently drops them first
    sites = ["A", "B", "C", "D"] + (["NEW"] if shift else [])
    site_p = [0.4, 0.3, 0.2, 0.1] if not shift else [0.35, 0.25, 0.2, 0.1, 0.1]
    age = rng.normal(60 + 6 * shift, 15, n).round().clip(18, 100)
    age[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "age": age,  # integers, many distinct values
            "score": np.round(rng.beta(1.5 + shift, 6, n), 4),  # as the feeds give it
            "dose": rng.choice(
                [100.0, 120.0, 140.0], n, p=[0.5, 0.3 + 0.1 * shift, 0.2 - 0.1 * shift]
            ),
            "flag": rng.choice([0.0, 1.0], n, p=[0.7 - 0.2 * shift, 0.3 + 0.2 * shift]),
            "sex": rng.choice(["F", "M"], n, p=[0.5 + 0.1 * shift, 0.5 - 0.1 * shift]),
            "site": rng.choice(sites, n, p=site_p),
            "scanner": scanner,
        }
    )


def _ours(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, dict]:
    both = pd.concat([ref, cur], ignore_index=True)
    is_ref = np.arange(len(both)) < len(ref)
    out = {}
    for col in NUM + CAT:
        enc = (
            _encode_numeric(both[col], 200)
            if col in NUM
            else _encode_categorical(both[col].astype("string"))
        )
        k = len(enc.labels)
        r = np.bincount(enc.codes[is_ref], minlength=k)
        c = np.bincount(enc.codes[~is_ref], minlength=k)
        out[col] = _evidently_default(enc, r, c)
    return out


def _evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, dict]:
    dd = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    snap = Report([ValueDrift(column=c) for c in NUM + CAT], include_tests=True).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    d = snap.dict()
    status = {t["name"].rsplit(" ", 1)[-1]: t["status"].value for t in d["tests"]}
    return {
        m["config"]["column"]: {
            "test": EV_NAMES[m["config"]["method"]],
            "value": float(m["value"]),
            "threshold": m["config"]["threshold"],
            "drift": status[m["config"]["column"]] == "FAIL",
        }
        for m in d["metrics"]
    }


@pytest.mark.parametrize(
    ("n_ref", "n_cur"),
    [(60, 40), (300, 900), (1000, 250), (1001, 250), (4000, 60), (20_000, 3000)],
)
@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_evidently_default_equals_evidently_value_drift(n_ref: int, n_cur: int, shift: float):
    rng = np.random.default_rng(n_ref * 7 + n_cur + int(shift * 10))
    ref, cur = _make(rng, n_ref, 0.0), _make(rng, n_cur, shift)
    ours, theirs = _ours(ref, cur), _evidently(ref, cur)
    for col in NUM + CAT:
        o, t = ours[col], theirs[col]
        assert o["exact"] is True
        assert o["test"] == t["test"], (col, o, t)
        assert o["threshold"] == pytest.approx(t["threshold"]), col
        assert o["value"] == pytest.approx(t["value"], rel=1e-7, abs=1e-12), (col, o, t)
        assert o["drift"] == t["drift"], (col, o, t)


def test_a_category_never_seen_in_a_small_reference_is_evidentlys_p_zero():
    ref = pd.DataFrame({"site": ["A"] * 300 + ["B"] * 200 + ["C"] * 100})
    cur = pd.DataFrame({"site": ["A"] * 100 + ["B"] * 100 + ["C"] * 50 + ["D"] * 5})
    dd = DataDefinition(categorical_columns=["site"])
    snap = Report([ValueDrift(column="site")]).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    value = float(snap.dict()["metrics"][0]["value"])
    both = pd.concat([ref, cur], ignore_index=True)
    enc = _encode_categorical(both["site"])
    r = np.bincount(enc.codes[:600], minlength=4)
    c = np.bincount(enc.codes[600:], minlength=4)
    assert value == 0.0
    assert _evidently_default(enc, r, c) == {
        "exact": True,
        "test": "chisquare",
        "value": 0.0,
        "threshold": 0.05,
        "drift": True,
    }


@pytest.mark.parametrize(("n_ref", "n_cur"), [(500, 200), (20_000, 5000)])
def test_psi_stat_test_is_what_value_drift_psi_runs_and_our_null_uses_its_formula(n_ref, n_cur):
    rng = np.random.default_rng(n_ref)
    ref, cur = _make(rng, n_ref, 0.0), _make(rng, n_cur, 0.5)
    dd = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    thresholds = {c: 0.1 + 0.01 * i for i, c in enumerate(NUM + CAT)}
    snap = Report(
        [ValueDrift(column=c, method="psi", threshold=thresholds[c]) for c in NUM + CAT],
        include_tests=True,
    ).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    d = snap.dict()
    status = {t["name"].rsplit(" ", 1)[-1]: t["status"].value for t in d["tests"]}
    for m in d["metrics"]:
        col = m["config"]["column"]
        kind = ColumnType.Numerical if col in NUM else ColumnType.Categorical
        r, c = ref[col].dropna(), cur[col].dropna()
        res = psi_stat_test(r, c, kind, thresholds[col])
        assert float(res.drift_score) == pytest.approx(float(m["value"]), rel=1e-12)
        assert bool(res.drifted) == (status[col] == "FAIL")
        # the calibration simulates exactly this statistic
        rc, cc = evidently_psi_counts(r, c, numeric=col in NUM)
        assert float(evidently_psi_value(rc, cc)) == pytest.approx(float(res.drift_score), rel=1e-9)


def _columns(block):
    return [c for s in block["scopes"] for w in s["windows"] for c in w["columns"]]


def test_a_real_shift_is_confirmed_by_evidentlys_psi_test_with_its_figures_recorded():
    rng = np.random.default_rng(5)
    n_ref, n_cur = 6000, 3000
    frame = pd.DataFrame(
        {
            "score": np.round(np.r_[rng.beta(1.5, 6, n_ref), rng.beta(3, 6, n_cur)], 4),
            "sex": rng.choice(["F", "M"], n_ref + n_cur),
        }
    )
    win = pd.Series(["2026-01"] * n_ref + ["2026-02"] * n_cur)
    block = drift_scan(frame, windows=win, reference=["2026-01"], by_site=False)
    cols = {c["column"]: c for c in _columns(block)}
    s = cols["score"]
    assert s["screened"] and s["drifted"]
    ev = s["evidently_psi"]
    # independently: Evidently's PSI on the raw values, and the threshold at least min_psi
    direct = psi_stat_test(
        frame["score"][:n_ref], frame["score"][n_ref:], ColumnType.Numerical, 0.1
    )
    assert ev["value"] == pytest.approx(float(direct.drift_score), rel=1e-12)
    assert ev["threshold"] >= DriftConfig().min_psi and ev["value"] >= ev["threshold"]
    assert ev["drift"] is True and ev["n_ref"] == n_ref and ev["n_cur"] == n_cur
    # the stable column was not screened in, so Evidently was not asked
    assert not cols["sex"]["screened"] and cols["sex"]["evidently_psi"] is None
    # the alert carries Evidently's confirming figure
    (alert,) = drift_alerts("m", block)
    assert alert.metric == "psi:score" and alert.evidence["evidently_psi"] == ev
    assert "Evidently PSI" in alert.summary


def test_a_shift_only_our_screen_sees_is_not_drift_unless_evidently_agrees():
    """Scores squeezed within 0..0.05 plus rare outliers at 1.0: the reference-decile bins of
    our screen see the squeeze, Evidently's equal-width Sturges bins (width ~0.06) put nearly
    everything in one bin and see no shift. Both must agree, so no drift."""
    rng = np.random.default_rng(11)
    n_ref, n_cur = 8000, 4000
    ref = rng.uniform(0, 0.05, n_ref)
    cur = rng.uniform(0, 0.025, n_cur)
    ref[:8], cur[:4] = 1.0, 1.0
    frame = pd.DataFrame({"score": np.round(np.r_[ref, cur], 4)})
    win = pd.Series(["2026-01"] * n_ref + ["2026-02"] * n_cur)
    block = drift_scan(frame, windows=win, reference=["2026-01"], by_site=False)
    (col,) = _columns(block)
    assert col["screened"] is True and col["psi"] >= col["psi_threshold"]
    direct = psi_stat_test(
        frame["score"][:n_ref], frame["score"][n_ref:], ColumnType.Numerical, 0.1
    )
    assert float(direct.drift_score) < 0.1
    assert col["evidently_psi"]["drift"] is False
    assert col["drifted"] is False and block["scopes"][0]["windows"][0]["drifted"] is False
