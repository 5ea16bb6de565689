"""The README's main job (`vigil demo`) end to end on the embedded default, run twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.settings import get_settings


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"select count(*) from {t}").fetchone()[0]
            for t in (
                "study",
                "airesult",
                "finalread",
                "receivedmessage",
                "aimodel",
                "app_user",
                "rescoreresult",
                "alert",
            )
        }


@pytest.mark.slow
def test_demo_builds_the_default_sqlite_store_and_is_idempotent(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    args = ["demo", "--studies", "1500", "--months", "4", "--no-serve"]

    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    db = tmp_path / "data" / "vigil.sqlite"
    assert db.is_file(), "the default database is a SQLite file in the data folder"
    after_first = _counts(db)
    assert after_first["study"] > 1000  # most of 1,500 studies paired by accession
    assert after_first["airesult"] > 0 and after_first["finalread"] > 0
    assert after_first["aimodel"] == 2 and after_first["app_user"] == 4
    assert after_first["rescoreresult"] > 0, "the demo re-scores a sample with the demo CNN"
    assert "new" in first.output

    get_settings.cache_clear()
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "reused" in second.output
    assert _counts(db) == after_first, "a second run must store nothing twice"
