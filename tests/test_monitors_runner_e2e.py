"""simulate -> models add -> ingest -> monitor, through the real CLI on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from vigil.cli.app import app


@pytest.mark.slow
def test_simulate_ingest_monitor_end_to_end(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    monkeypatch.setenv("VIGIL_DEMO", "1")
    from vigil.settings import get_settings
    from vigil.store.db import dispose_all

    get_settings.cache_clear()
    runner = CliRunner()
    sim = tmp_path / "sim"
    steps = [
        lambda: [
            "simulate",
            "--out",
            str(sim),
            "--studies",
            "3000",
            "--months",
            "6",
            "--seed",
            "3",
        ],
        lambda: ["models", "add", *sorted(str(p) for p in (sim / "models").glob("*.toml"))],
        lambda: ["ingest", str(sim / "feeds")],
        lambda: [
            "monitor",
            "--json",
            str(tmp_path / "run.json"),
            "--evidently-report",
            str(tmp_path / "evidently"),
        ],
    ]
    try:
        for step in steps:
            args = step()
            r = runner.invoke(app, args)
            assert r.exit_code == 0, f"{args[0]}: {r.output}"
    finally:
        dispose_all()
        get_settings.cache_clear()
    doc = json.loads((tmp_path / "run.json").read_text())
    truth = pd.read_parquet(sim / "truth.parquet")
    manifest = json.loads((sim / "manifest.json").read_text())
    ai_rows = int(truth["model"].notna().sum())
    # every AI result arrives except the few malformed messages the simulator planted
    assert ai_rows - len(manifest["malformed"]) <= doc["run"]["n_rows"] <= ai_rows
    assert set(doc["models"]) == {"neurovue-ich", "lungsight-nodule"}
    assert doc["errors"] == []
    for name, res in doc["models"].items():
        positives = int(((truth["model"] == name) & (truth["rad_label_final"] == "positive")).sum())
        assert abs(res["counts"]["positive"] - positives) <= max(3, 0.02 * positives)
        assert res["performance"]["metrics"]["sensitivity"]["status"] == "ok"
    # Evidently's own HTML report per model, reference vs latest month
    reports = sorted(p.name for p in (tmp_path / "evidently").glob("*.html"))
    assert [r.split("-drift-")[0] for r in reports] == ["lungsight-nodule", "neurovue-ich"]
    html = (tmp_path / "evidently" / reports[0]).read_text()
    assert html.lstrip().startswith("<!DOCTYPE html>") and "scanner_model" in html
    alerts = {(a["kind"], a["model"], a["subgroup"], a["metric"]) for a in doc["alerts"]}
    # the two strongest injected events show even on this small network
    assert ("drift", "lungsight-nodule", "", "psi:model_version") in alerts
    assert ("drift", "neurovue-ich", "site=EMC", "psi:scanner_model") in alerts
