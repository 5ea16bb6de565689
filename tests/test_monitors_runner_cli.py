"""`vigil monitor` and `vigil export cases` through the real CLI, on both backends."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from monitor_frames import seed_store_from_frame, synthetic_frame
from typer.testing import CliRunner

from monitors.frame import CASE_FRAME_COLUMNS
from vigil.caseframe import load_case_frame, read_case_frame
from vigil.cli.app import app
from vigil.monitoring import ModelInfo

MODEL = ModelInfo(name="neurovue-ich", finding="ich", go_live_date=date(2026, 1, 1))


@pytest.fixture
def seeded(engine):
    seed_store_from_frame(
        engine, synthetic_frame(3000, seed=9, scanner_change=("EMC", "2026-08")), [MODEL]
    )
    return engine


def test_monitor_json_schema(seeded, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    r = CliRunner().invoke(app, ["monitor", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "neurovue-ich" in r.output and "raised" in r.output
    doc = json.loads(out.read_text())
    assert set(doc) >= {"schema_version", "run", "models", "alerts", "alert_counts", "errors"}
    assert doc["errors"] == []
    run = doc["run"]
    assert set(run) >= {"run_id", "started_at", "finished_at", "data_from", "data_to", "n_rows"}
    m = doc["models"]["neurovue-ich"]
    assert set(m) >= {
        "model", "counts", "reference", "performance", "windows", "control_chart",
        "threshold", "drift", "fairness", "fairness_changes", "rescoring", "coverage",
    }  # fmt: skip
    sens = m["performance"]["metrics"]["sensitivity"]
    assert set(sens) >= {"value", "ci_low", "ci_high", "n", "status", "method"}
    assert sens["ci_low"] <= sens["value"] <= sens["ci_high"]
    col = m["drift"]["scopes"][0]["windows"][0]["columns"][0]
    assert set(col) >= {"column", "p_value", "p_threshold", "psi", "psi_threshold", "drifted"}
    assert any(t["is_operating"] for t in m["threshold"])
    alert = doc["alerts"][0]
    assert set(alert) >= {
        "alert_id", "action", "key", "kind", "model", "subgroup", "metric", "value",
        "threshold", "severity", "summary", "evidence", "status",
    }  # fmt: skip


def test_monitor_unknown_model_is_one_clear_line(seeded) -> None:
    r = CliRunner().invoke(app, ["monitor", "--model", "nope"])
    assert r.exit_code == 1
    assert "no model named 'nope'" in r.output and "neurovue-ich" in r.output
    assert "Traceback" not in r.output


def test_alerts_ack_and_resolve_via_cli(seeded) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["monitor"]).exit_code == 0
    listed = runner.invoke(app, ["alerts", "list", "--status", "open", "--json"])
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.stdout)
    assert alerts and all(a["status"] == "open" for a in alerts)
    aid = str(alerts[0]["alert_id"])
    r = runner.invoke(app, ["alerts", "ack", aid, "--by", "qo.lee", "--note", "looking"])
    assert r.exit_code == 0 and "acknowledged by qo.lee" in r.output
    r = runner.invoke(app, ["alerts", "resolve", aid, "--by", "qo.lee", "--note", "rebaselined"])
    assert r.exit_code == 0 and "resolved" in r.output
    done = json.loads(
        runner.invoke(app, ["alerts", "list", "--status", "resolved", "--json"]).stdout
    )
    assert [a["alert_id"] for a in done] == [int(aid)]
    assert done[0]["resolve_note"] == "rebaselined" and done[0]["acknowledge_note"] == "looking"
    r = runner.invoke(app, ["alerts", "ack", "99999", "--by", "x"])
    assert r.exit_code == 1 and "no alert with id 99999" in r.output
    r = runner.invoke(app, ["alerts", "resolve", aid, "--by", "x"])
    assert r.exit_code == 1 and "already resolved" in r.output
    r = runner.invoke(app, ["alerts", "list", "--kind", "weird"])
    assert r.exit_code == 1 and "--kind must be one of" in r.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_cases_round_trip(seeded, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"cases{suffix}"
    r = CliRunner().invoke(app, ["export", "cases", "--out", str(out), "--since", "2026-03-01"])
    assert r.exit_code == 0, r.output
    from datetime import UTC, datetime

    want = load_case_frame(seeded, since=datetime(2026, 3, 1, tzinfo=UTC))
    got = read_case_frame(out)
    assert len(got) == len(want) > 0
    assert list(got.columns)[: len(CASE_FRAME_COLUMNS)] == list(CASE_FRAME_COLUMNS)
    pd.testing.assert_frame_equal(
        got[list(CASE_FRAME_COLUMNS)], want[list(CASE_FRAME_COLUMNS)], check_categorical=False
    )


def test_export_rejects_unknown_format_and_model(seeded, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["export", "cases", "--out", str(tmp_path / "x.xlsx")])
    assert r.exit_code == 1 and "must end in .csv or .parquet" in r.output
    r = CliRunner().invoke(
        app, ["export", "cases", "--out", str(tmp_path / "x.csv"), "--model", "nope"]
    )
    assert r.exit_code == 1 and "no model named 'nope'" in r.output
