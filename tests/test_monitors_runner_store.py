"""The runner over a real store (SQLite and PostgreSQL): results stored, alerts raised once."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
from monitor_frames import seed_store_from_frame, synthetic_frame
from sqlmodel import select

from vigil.caseframe import load_case_frame
from vigil.monitoring import ModelInfo, latest_run, run_monitors
from vigil.store.db import session_scope
from vigil.store.tables import Alert, AuditLog, MonitorRun

MODEL = ModelInfo(
    name="neurovue-ich",
    finding="ich",
    operating_threshold=0.5,
    baseline_sensitivity=0.9,
    baseline_specificity=0.93,
    go_live_date=date(2026, 1, 1),
)


def _seed(engine, n: int = 4000):
    frame = synthetic_frame(n, seed=5, scanner_change=("EMC", "2026-07"))
    seed_store_from_frame(engine, frame, [MODEL])
    return frame


def test_loader_reads_back_what_was_stored(engine) -> None:
    frame = _seed(engine, 1500)
    loaded = load_case_frame(engine).sort_values("study_id").reset_index(drop=True)
    want = frame.sort_values("study_id").reset_index(drop=True)
    for col in ("study_id", "score", "ai_call", "label", "age", "threshold"):
        pd.testing.assert_series_equal(loaded[col], want[col], check_names=False)
    for col in ("site", "scanner_model", "label_state", "age_band", "model"):
        assert list(loaded[col].astype(str)) == list(want[col].astype(str)), col
    assert (loaded["exam_at"] - want["exam_at"]).abs().max() < pd.Timedelta(milliseconds=1)


def test_run_stores_results_and_alerts_without_duplicates(engine) -> None:
    _seed(engine)
    first = run_monitors(engine)
    json.dumps(first, allow_nan=False)  # strict JSON
    assert first["schema_version"] == 1
    assert first["run"]["n_rows"] == 4000 and first["run"]["run_id"] is not None
    res = first["models"]["neurovue-ich"]
    assert res["reference"]["windows"] == ["2026-01", "2026-02"]
    assert res["performance"]["metrics"]["sensitivity"]["method"] == "wilson"
    assert [w["window"] for w in res["windows"]][:2] == ["2026-01", "2026-02"]
    drift = [a for a in first["alerts"] if a["kind"] == "drift"]
    assert {a["subgroup"] for a in drift} == {"site=EMC"}
    assert {a["metric"] for a in drift} == {"psi:scanner_model", "psi:scanner_manufacturer"}
    assert all(a["action"] == "raised" for a in first["alerts"])
    assert drift[0]["evidence"]["first_window"] == "2026-07"
    n_alerts = len(first["alerts"])
    second = run_monitors(engine)
    assert {a["action"] for a in second["alerts"]} == {"updated"}
    assert second["alert_counts"]["updated"] == n_alerts
    with session_scope(engine) as s:
        assert len(list(s.exec(select(Alert)))) == n_alerts
        runs = list(s.exec(select(MonitorRun)))
        assert len(runs) == 2
        raises = [a for a in s.exec(select(AuditLog)) if a.action == "alert.raise"]
        assert len(raises) == n_alerts
    stored = latest_run(engine)
    assert stored["run"]["run_id"] == second["run"]["run_id"]
    assert stored["models"]["neurovue-ich"]["drift"]["scopes"][0]["subgroup"] == ""


def test_rescoring_disagreement_raises_a_rescoring_alert(engine) -> None:
    frame = _seed(engine, 1500)
    from vigil.store.tables import RescoreResult

    sample = frame.sample(80, random_state=0)
    with session_scope(engine) as s:
        for row in sample.itertuples():
            s.add(
                RescoreResult(
                    run_id="r1",
                    study_id=int(row.study_id),
                    model_id=1,
                    model_hash="sha256:test",
                    production_score=float(row.score),
                    rescore_score=min(1.0, float(row.score) + 0.3),  # a silent change
                )
            )
    out = run_monitors(engine)
    agreement = out["models"]["neurovue-ich"]["rescoring"]
    assert agreement["n"] == 80 and agreement["disagrees"] is True
    assert agreement["paired_auc"] is not None  # labels were joined for the paired DeLong
    rescoring = [a for a in out["alerts"] if a["kind"] == "rescoring"]
    assert len(rescoring) == 1 and rescoring[0]["model"] == "neurovue-ich"


def test_ai_results_missing_at_one_site_raise_a_coverage_alert(engine) -> None:
    from datetime import UTC, datetime, timedelta

    from vigil.store.tables import Study

    _seed(engine, 3000)
    # EMC keeps scanning head CTs from September on, but the AI stops answering for most
    with session_scope(engine) as s:
        for i in range(400):
            s.add(
                Study(
                    site_code="EMC",
                    accession=f"X{i}",
                    modality="CT",
                    procedure_code="CTHEAD",
                    exam_started_at=datetime(2026, 9, 1, tzinfo=UTC) + timedelta(hours=9 * i),
                )
            )
    out = run_monitors(engine)
    cov = [a for a in out["alerts"] if a["kind"] == "coverage"]
    assert [(a["model"], a["subgroup"], a["metric"]) for a in cov] == [
        ("neurovue-ich", "site=EMC", "ai_coverage")
    ]
    assert cov[0]["value"] < cov[0]["threshold"] - 0.1
    rows = out["models"]["neurovue-ich"]["coverage"]
    assert not any(r["drop"] for r in rows if r["site"] != "EMC")
