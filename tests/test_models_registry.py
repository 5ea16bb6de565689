"""Model registry: cards from TOML, upsert by name, history, audit, CLI; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from models.registry import add_cards, history, list_models, load_card
from vigil.cli.app import app
from vigil.errors import InvalidInputError
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, AIModelVersion, AuditLog

CARD = """\
name = "neurovue-ich"
version = "3.1.2"
vendor = "NeuroVue Imaging Inc. (simulated)"
product = "NeuroVue ICH"
finding = "ich"
modality = "CT"
body_part = "HEAD"
intended_use = "Triage of suspected acute intracranial hemorrhage on non-contrast head CT."
clearance_id = "SIM-K990101"
operating_threshold = 0.5
owner = "Dr. Amara Okafor"
go_live_date = 2025-12-01
status = "active"

[baseline]
sensitivity = 0.91
specificity = 0.93
auc = 0.96
ppv = 0.52
n = 600
period = "2025-10 acceptance test"

[target]
sensitivity = 0.85
specificity = 0.90

[contacts]
vendor_support = "support@example.invalid"
"""


def _write(tmp_path: Path, text: str, name: str = "card.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_add_update_history_and_audit(engine, tmp_path: Path) -> None:
    card = _write(tmp_path, CARD)
    [out] = add_cards(engine, [card], actor="alice")
    assert out.action == "created"

    # an identical card is a no-op: no history row, no audit entry
    [again] = add_cards(engine, [card], actor="alice")
    assert again.action == "unchanged"

    # a version change and a card edit keep the history
    _write(tmp_path, CARD.replace('"3.1.2"', '"3.2.0"').replace("0.5\n", "0.45\n"), "v2.toml")
    [upd] = add_cards(engine, [tmp_path / "v2.toml"], actor="bob")
    assert upd.action == "updated"
    assert set(upd.changed) == {"current_version", "operating_threshold"}

    model, versions = history(engine, "neurovue-ich")
    assert model.current_version == "3.2.0"
    assert model.operating_threshold == pytest.approx(0.45)
    assert model.baseline_n == 600 and model.baseline_auc == pytest.approx(0.96)
    assert model.target_sensitivity == pytest.approx(0.85)
    assert model.go_live_date == date(2025, 12, 1)
    assert model.card == {"contacts": {"vendor_support": "support@example.invalid"}}
    assert [v.version for v in versions] == ["3.1.2", "3.2.0"]
    assert versions[0].card_snapshot["operating_threshold"] == pytest.approx(0.5)
    assert versions[1].card_snapshot["operating_threshold"] == pytest.approx(0.45)
    assert versions[1].changed_by == "bob" and "3.1.2 -> 3.2.0" in versions[1].note
    with session_scope(engine) as s:
        audit = s.exec(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(a.actor, a.action, a.target) for a in audit] == [
        ("alice", "model.created", "model:neurovue-ich"),
        ("bob", "model.updated", "model:neurovue-ich"),
    ]


def test_completes_unregistered_row_from_ingest(engine, tmp_path: Path) -> None:
    with session_scope(engine) as s:  # what ingest creates for an unknown model in a feed
        s.add(AIModel(name="neurovue-ich", finding="ich", status="unregistered"))
    [out] = add_cards(engine, [_write(tmp_path, CARD)], actor="carol")
    assert out.action == "completed"
    with session_scope(engine) as s:
        rows = s.exec(select(AIModel)).all()
        assert len(rows) == 1  # same row (same id): the AI results already stored stay attached
        assert rows[0].status == "active" and rows[0].vendor.startswith("NeuroVue")
        assert len(s.exec(select(AIModelVersion)).all()) == 1


@pytest.mark.parametrize(
    ("edit", "key", "fix"),
    [
        (("operating_threshold = 0.5", "operating_threshold = 50"), "operating_threshold", "0.85"),
        (('status = "active"', 'status = "live"'), "status", "pilot"),
        (('name = "neurovue-ich"\n', ""), "name", "add name"),
        (("go_live_date = 2025-12-01", 'go_live_date = "soon"'), "go_live_date", "2025-01-31"),
        (("n = 600", "n = -3"), "baseline.n", "500"),
        (("auc = 0.96", "roc = 0.96"), "baseline.roc", "sensitivity"),
    ],
)
def test_validation_errors_name_file_key_and_fix(tmp_path: Path, edit, key, fix) -> None:
    path = _write(tmp_path, CARD.replace(*edit))
    with pytest.raises(InvalidInputError) as exc:
        load_card(path)
    msg = str(exc.value)
    assert str(path) in msg and f"'{key}'" in msg and fix in msg and "Fix:" in msg


def test_one_bad_file_writes_nothing(engine, tmp_path: Path) -> None:
    good = _write(tmp_path, CARD, "good.toml")
    bad = _write(tmp_path, "name = [", "bad.toml")
    with pytest.raises(InvalidInputError, match=r"bad\.toml: not valid TOML"):
        add_cards(engine, [good, bad], actor="x")
    assert list_models(engine) == []


def test_cli_add_list_show(settings, tmp_path: Path) -> None:
    card = _write(tmp_path, CARD)
    runner = CliRunner()
    res = runner.invoke(app, ["models", "add", str(card), "--actor", "dana"])
    assert res.exit_code == 0, res.output
    assert "neurovue-ich: created" in res.output
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "neurovue-ich" in res.output and "3.1.2" in res.output
    _write(tmp_path, CARD.replace('"3.1.2"', '"3.2.0"'), "v2.toml")
    assert runner.invoke(app, ["models", "add", str(tmp_path / "v2.toml")]).exit_code == 0
    res = runner.invoke(app, ["models", "show", "neurovue-ich"])
    assert res.exit_code == 0, res.output
    assert "SIM-K990101" in res.output and "3.1.2 -> 3.2.0" in res.output
    res = runner.invoke(app, ["models", "show", "nope"])
    assert res.exit_code == 1 and "no model named 'nope'" in res.output
    res = runner.invoke(app, ["models", "add", str(_write(tmp_path, "finding = 1", "x.toml"))])
    assert res.exit_code == 1 and "x.toml" in res.output and "Traceback" not in res.output


def test_simulator_cards_register(engine, tmp_path: Path) -> None:
    """The cards `vigil simulate` writes register as they are; values match its manifest."""
    import json

    from vigil.simulate import SimulationConfig, simulate

    out = tmp_path / "sim"
    simulate(SimulationConfig(studies=60, months=1, seed=4, out=out))
    outcomes = add_cards(engine, sorted((out / "models").glob("*.toml")), actor="sim")
    assert {o.name for o in outcomes} == {"neurovue-ich", "lungsight-nodule"}
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["models"]:
        model, versions = history(engine, entry["name"])
        acc = entry["acceptance_test"]
        assert model.baseline_sensitivity == pytest.approx(acc["sensitivity"])
        assert model.baseline_auc == pytest.approx(acc["auc"])
        assert model.baseline_n == acc["n"]
        assert model.operating_threshold == pytest.approx(entry["threshold"])
        assert model.current_version == entry["versions"][0]["version"]
        assert model.card["sender"] == entry["sender"] and len(versions) == 1


def test_card_rescoring_spec_path_is_resolved_against_the_card(tmp_path: Path) -> None:
    (tmp_path / "cards").mkdir()
    path = _write(tmp_path / "cards", CARD + '\n[rescoring]\nspec = "specs/nv.toml"\n')
    card = load_card(path)
    assert card.extra["rescoring"]["spec"] == str(tmp_path / "cards" / "specs" / "nv.toml")
