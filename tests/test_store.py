"""The store: migrations on both backends, UTC timestamps, settings errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from vigil.errors import ConfigError
from vigil.settings import load_settings
from vigil.store.db import current_revision, head_revision, make_engine
from vigil.store.tables import Site, Study


def test_migrates_to_head_and_matches_models(engine) -> None:
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


def test_timestamps_round_trip_as_utc(engine) -> None:
    local = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    with Session(engine) as s:
        s.add(Site(code="NGH", name="North General"))
        s.add(Study(site_code="NGH", accession="A1", exam_started_at=local))
        s.commit()
    with Session(engine) as s:
        got = s.exec(select(Study)).one().exam_started_at
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got == local.astimezone(UTC)


def test_every_connection_gets_the_session_settings(engine) -> None:
    """SQLite: WAL and FULL sync (an ACK means durable). PostgreSQL: every statement planned
    with its values, never a generic plan kept from when the tables were empty (a prepared
    id look-up stuck on a sequential scan stalled a 1M-study backfill)."""
    for _ in range(2):  # a fresh connection, then one back from the pool after a rollback
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == (
                    "force_custom_plan"
                )
            else:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            conn.rollback()


def test_naive_timestamp_is_refused(engine) -> None:
    with Session(engine) as s:
        s.add(Site(code="NGH"))
        s.add(Study(site_code="NGH", accession="A2", exam_started_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            s.commit()


def test_bad_database_url_names_key_and_fix(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", "not-a-url")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.key == "database_url"
    assert "VIGIL_DATABASE_URL" in err.value.fix


def test_demo_secret_refused_without_demo_flag(monkeypatch) -> None:
    monkeypatch.delenv("VIGIL_DEMO", raising=False)
    with pytest.raises(ConfigError, match="pseudonym_secret"):
        load_settings().require_production_secrets()
    load_settings(demo=True).require_production_secrets()


def test_toml_file_is_read_and_environment_wins(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "vigil.toml"
    cfg.write_text(
        f'database_url = "sqlite:///{tmp_path}/from-file.sqlite"\nlisten_port = 3575\n'
        "deadletter_retention_days = 30\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("VIGIL_CONFIG", str(cfg))
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    s = load_settings()
    assert s.database_url.endswith("from-file.sqlite")
    assert (s.listen_port, s.deadletter_retention_days) == (3575, 30)
    monkeypatch.setenv("VIGIL_LISTEN_PORT", "4575")
    assert load_settings().listen_port == 4575  # environment beats the file


def test_default_database_is_a_sqlite_file_in_the_data_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "d"))
    assert load_settings().effective_database_url == f"sqlite:///{tmp_path / 'd' / 'vigil.sqlite'}"


@pytest.mark.parametrize(
    ("content", "key", "words"),
    [
        ("database_url = \n", "VIGIL_CONFIG", "not valid TOML"),
        ("listen_prot = 1\n", "listen_prot", "not a Vigil setting"),
        ("listen_port = 99999\n", "listen_port", "less than or equal"),
        ('database_url = "mysql-ish"\n', "database_url", "SQLAlchemy URL"),
    ],
)
def test_bad_settings_file_names_the_key_and_the_fix(
    tmp_path, monkeypatch, content, key, words
) -> None:
    cfg = tmp_path / "vigil.toml"
    cfg.write_text(content, encoding="utf-8")
    monkeypatch.setenv("VIGIL_CONFIG", str(cfg))
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.key == key
    assert words in str(err.value) and err.value.fix


def test_db_commands_migrate_and_report(settings) -> None:
    from typer.testing import CliRunner

    from vigil.cli.app import app

    runner = CliRunner()
    before = runner.invoke(app, ["db", "current"])
    assert before.exit_code == 0 and "revision none" in before.output
    up = runner.invoke(app, ["db", "upgrade"])
    head = head_revision(make_engine(settings.effective_database_url))
    assert up.exit_code == 0 and head and head in up.output
    after = runner.invoke(app, ["db", "current"])
    assert after.exit_code == 0 and "up to date" in after.output


def test_sqlite_fast_binding_stores_exactly_what_sqlite3_stores() -> None:
    """None and bool go through a registered adapter (a dict hit, not two failed attribute
    look-ups); what reaches the table must not change by a bit."""
    import sqlite3

    from vigil.store.db import register_sqlite_fast_binding

    values = [None, True, False, 0, 1, -7, 2.5, "x", "", b"\x00b"]

    def stored() -> list[tuple[object, str]]:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (v)")
        conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        rows = conn.execute("SELECT v, typeof(v) FROM t ORDER BY rowid").fetchall()
        conn.close()
        return rows

    keys = [(type(None), sqlite3.PrepareProtocol), (bool, sqlite3.PrepareProtocol)]
    saved = {k: sqlite3.adapters.pop(k) for k in keys if k in sqlite3.adapters}
    try:
        plain = stored()
        register_sqlite_fast_binding()
        assert all(k in sqlite3.adapters for k in keys)
        fast = stored()
    finally:
        for k in keys:
            sqlite3.adapters.pop(k, None)
        sqlite3.adapters.update(saved)
    assert fast == plain
    assert plain[0] == (None, "null") and plain[1] == (1, "integer")
