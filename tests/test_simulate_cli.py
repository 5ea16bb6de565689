"""``vigil simulate`` as a user runs it: output files, model cards, and one clear line on bad
options with a non-zero exit."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.store.tables import AIModel

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["simulate", *args])


def test_simulate_writes_feeds_manifest_truth_and_model_cards(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = run("--studies", "120", "--months", "1", "--seed", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "120 studies" in result.output
    assert {p.name for p in (out / "feeds").iterdir()} == {
        "RADIS", "SYNRIS", "NEUROVUE", "LUNGSIGHT",
    }  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["studies"] == 120
    assert manifest["period"]["start"] == "2025-11-01"
    assert (out / "truth.parquet").is_file()
    fields = set(AIModel.model_fields) - {"id", "card", "created_at", "updated_at"}
    for name in ("neurovue-ich", "lungsight-nodule"):
        card = tomllib.loads((out / "models" / f"{name}.toml").read_text())
        assert card["name"] == name
        assert fields <= set(card), fields - set(card)
        assert 0 < card["baseline_sensitivity"] <= 1 and card["baseline_n"] > 0
        model = next(m for m in manifest["models"] if m["name"] == name)
        assert str(card["go_live_date"]) == model["go_live_date"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--studies", "-5"], "--studies"),
        (["--studies", "0"], "--studies"),
        (["--months", "0"], "--months"),
        (["--mess", "1.5"], "--mess"),
        (["--mess", "-0.1"], "--mess"),
        (["--start", "2025-02-30"], "--start"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_options_give_one_clear_line(tmp_path: Path, args: list[str], words: str) -> None:
    result = run("--out", str(tmp_path / "x"), *args)
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and words in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_non_empty_out_needs_force_and_force_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run("--studies", "30", "--months", "1", "--out", str(out))
    assert result.exit_code == 1
    assert "not empty" in result.output and "--force" in result.output
    assert not (out / "manifest.json").exists()
    result = run("--studies", "30", "--months", "1", "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "manifest.json").is_file()


def test_stable_flag_means_no_events(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = run("--studies", "60", "--months", "2", "--stable", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["events"] == [] and manifest["options"]["stable"] is True
