"""The store: migrations on both backends, UTC timestamps, settings errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from vigil.errors import ConfigError
from vigil.settings import load_settings
from vigil.store.db import current_revision, head_revision
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
