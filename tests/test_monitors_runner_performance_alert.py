"""A decline in sensitivity after the reference months raises a `performance` alert through the
runner's CUSUM chart (right model, metric and month); the stable twin raises none."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from monitor_frames import seed_store_from_frame, synthetic_frame

from vigil.monitoring import ModelInfo, evaluate, run_monitors

MODEL = ModelInfo(name="neurovue-ich", finding="ich", go_live_date=date(2026, 1, 1))
DROP_FROM = "2026-06"


def _twins(n: int = 14_000, seed: int = 21) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same network twice; in the second, from June on, 15% of the positive cases get a
    score below the operating threshold (a missed finding), as after a silent model change."""
    stable = synthetic_frame(n, seed=seed)
    drop = stable.copy()
    rng = np.random.default_rng(seed)
    month = drop["exam_at"].dt.strftime("%Y-%m")
    hit = (
        (month >= DROP_FROM).to_numpy()
        & (drop["label"] == 1).fillna(False).to_numpy()
        & drop["ai_call"].astype(bool).to_numpy()
        & (rng.random(len(drop)) < 0.15)
    )
    drop.loc[hit, "score"] = drop.loc[hit, "score"] * 0.2
    drop["ai_call"] = drop["score"] >= drop["threshold"]
    return stable, drop


def _monthly_sensitivity(frame: pd.DataFrame) -> pd.Series:
    pos = frame[(frame["label"] == 1).fillna(False)]
    return pos.groupby(pos["exam_at"].dt.strftime("%Y-%m"))["ai_call"].mean()


def test_sensitivity_decline_raises_a_cusum_performance_alert_and_the_twin_none() -> None:
    stable, drop = _twins()
    # the injected decline, measured independently of the monitors
    sens_s, sens_d = _monthly_sensitivity(stable), _monthly_sensitivity(drop)
    assert (sens_s - sens_d).loc[DROP_FROM:].min() > 0.08
    assert (sens_s - sens_d).loc[:"2026-05"].abs().max() == 0

    _, quiet, errors = evaluate(stable, [MODEL])
    assert errors == []
    assert [c for c in quiet if c.kind == "performance"] == []

    models, found, errors = evaluate(drop, [MODEL])
    assert errors == []
    perf = [c for c in found if c.kind == "performance"]
    cusum = [c for c in perf if c.metric == "cusum:sensitivity"]
    assert len(cusum) == 1, [c.metric for c in perf]
    alert = cusum[0]
    assert alert.model == "neurovue-ich" and alert.subgroup == ""
    assert alert.evidence["first_signal"] >= DROP_FROM
    assert alert.evidence["first_signal"] <= "2026-08"  # within three months of the start
    assert alert.value is not None and alert.threshold == pytest.approx(
        alert.evidence["parameters"]["h"]
    )
    # nothing on specificity: only positives were touched
    assert not any(c.metric.endswith("specificity") for c in perf)
    chart = next(c for c in models["neurovue-ich"]["control_chart"] if c["metric"] == "sensitivity")
    before = [p for p in chart["points"] if p["period"] < DROP_FROM]
    assert not any(p["alarm"] for p in before)


def test_the_store_run_raises_the_performance_alert(engine) -> None:
    _, drop = _twins(9000, seed=23)
    seed_store_from_frame(engine, drop, [MODEL])
    res = run_monitors(engine)
    perf = [a for a in res["alerts"] if a["kind"] == "performance"]
    keys = {a["key"] for a in perf}
    assert "performance|neurovue-ich||cusum:sensitivity" in keys
    a = next(a for a in perf if a["metric"] == "cusum:sensitivity")
    assert a["action"] == "raised" and a["status"] == "open"
    assert a["evidence"]["first_signal"] >= DROP_FROM
