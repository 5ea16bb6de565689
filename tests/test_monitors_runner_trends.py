"""The runner's weekly and rolling trends, and subgroup intersections on request."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from monitor_frames import seed_store_from_frame, synthetic_frame
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.monitoring import ModelInfo, MonitorConfig, evaluate

MODEL = ModelInfo(name="neurovue-ich", finding="ich", go_live_date=date(2026, 1, 1))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(6000, seed=4, months=6)


def _in(frame: pd.DataFrame, period: dict) -> pd.DataFrame:
    t = frame["exam_at"]
    return frame[(t >= pd.Timestamp(period["start"])) & (t < pd.Timestamp(period["end"]))]


def _sensitivity(rows: pd.DataFrame) -> tuple[int, int]:
    pos = rows[(rows["label"] == 1).fillna(False) & rows["ai_call"].notna()]
    return int(pos["ai_call"].astype(bool).sum()), len(pos)


def test_weekly_and_rolling_trends_match_independent_counts(frame: pd.DataFrame) -> None:
    models, _, errors = evaluate(frame, [MODEL], config=MonitorConfig(rolling_weeks=4))
    assert errors == []
    trends = models["neurovue-ich"]["trends"]
    weeks, rolling = trends["week"], trends["rolling"]
    assert trends["rolling_weeks"] == 4
    # every ISO week from the first exam to the last, in order, named as ISO does
    iso = frame["exam_at"].dt.isocalendar()
    want = sorted({f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"], strict=True)})
    assert [w["period"] for w in weeks] == want
    assert sum(w["n_results"] for w in weeks) == len(frame)
    assert len(rolling) == len(weeks) - 3
    for w in weeks:
        x, n = _sensitivity(_in(frame, w))
        est = w["metrics"]["sensitivity"]
        assert est["n"] == n and est["numerator"] == x
        if est["status"] == "ok":
            lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
            assert est["value"] == pytest.approx(x / n)
            assert (est["ci_low"], est["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
        else:
            assert est["value"] is None and n < 30
    for i, r in enumerate(rolling):
        assert r["kind"] == "rolling" and r["period"].endswith(weeks[i + 3]["period"])
        assert r["start"] == weeks[i]["start"] and r["end"] == weeks[i + 3]["end"]
        rows = _in(frame, r)
        assert r["n_results"] == len(rows) == sum(w["n_results"] for w in weeks[i : i + 4])
        x, n = _sensitivity(rows)
        assert (
            r["metrics"]["sensitivity"]["n"] == n and r["metrics"]["sensitivity"]["numerator"] == x
        )
        auc = r["metrics"]["auc"]
        lab = rows[rows["label"].notna()]
        if auc["status"] == "ok":
            want_auc = roc_auc_score(lab["label"].astype(int), lab["score"].astype(float))
            assert auc["value"] == pytest.approx(want_auc, abs=1e-12)
    assert any(r["metrics"]["auc"]["status"] == "ok" for r in rolling)


def test_intersections_on_request_are_scanned_with_their_own_groups(frame: pd.DataFrame) -> None:
    plain, _, _ = evaluate(frame, [MODEL])
    assert "sex x age_band" not in {
        t["attribute"] for t in plain["neurovue-ich"]["fairness"]["tables"]
    }
    cfg = MonitorConfig(intersections=(("sex", "age_band"), ("site", "patient_class")))
    models, _, errors = evaluate(frame, [MODEL], config=cfg)
    assert errors == []
    fair = models["neurovue-ich"]["fairness"]
    assert fair["intersections"] == [["sex", "age_band"], ["site", "patient_class"]]
    tables = {t["attribute"]: t for t in fair["tables"]}
    assert {"sex x age_band", "site x patient_class"} <= set(tables)
    # the groups and their n, counted independently over the post-reference months
    post = frame[frame["exam_at"] >= pd.Timestamp("2026-03-01", tz="UTC")]
    pos = post[(post["label"] == 1).fillna(False)]
    counts = pos.groupby(["sex", "age_band"], observed=True).size()
    rows = [r for r in tables["sex x age_band"]["rows"] if r["metric"] == "sensitivity"]
    assert {r["group"] for r in rows} == {f"{s} | {a}" for s, a in counts.index}
    for r in rows:
        s, a = r["group"].split(" | ")
        assert r["estimate"]["n"] == counts[(s, a)]
        assert r["rest"]["n"] == len(pos) - counts[(s, a)]
    # one BH family: more hypotheses than without the intersections
    assert fair["n_tests"] > plain["neurovue-ich"]["fairness"]["n_tests"]


def test_monitor_cli_intersections_reach_the_json(engine, tmp_path: Path) -> None:
    seed_store_from_frame(engine, synthetic_frame(2500, seed=8, months=5), [MODEL])
    out = tmp_path / "run.json"
    r = CliRunner().invoke(app, ["monitor", "--intersections", "sex:age_band", "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["run"]["intersections"] == [["sex", "age_band"]]
    m = doc["models"]["neurovue-ich"]
    assert "sex x age_band" in {t["attribute"] for t in m["fairness"]["tables"]}
    assert m["trends"]["week"] and m["trends"]["rolling"]
    bad = CliRunner().invoke(app, ["monitor", "--intersections", "sex:shoe_size"])
    assert bad.exit_code == 1
    assert "unknown attribute 'shoe_size'" in bad.output and "Traceback" not in bad.output
    odd = CliRunner().invoke(app, ["monitor", "--intersections", "sex"])
    assert odd.exit_code == 1 and "ATTRIBUTE:ATTRIBUTE" in odd.output
