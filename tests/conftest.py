"""Shared fixtures: a fresh store on SQLite and on PostgreSQL, isolated settings per test.

Tests that touch the store take the ``db_url`` fixture (or ``settings``/``engine``); each such
test runs twice, once per backend. PostgreSQL is the server at 127.0.0.1:5432 (database ``test``,
trust auth); every test gets its own schema, dropped afterwards. When the server is missing the
PostgreSQL half is skipped locally, but fails under CI (``CI=true``) or
``VIGIL_TEST_REQUIRE_POSTGRES=1``: the suite must prove both backends there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from vigil.settings import Settings, get_settings
from vigil.store.db import dispose_all, open_store

PG_BASE = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent
SAMPLES = (REPO.parent / "shared" / "hl7-samples").resolve()


def _pg_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("VIGIL_TEST_REQUIRE_POSTGRES") == "1"
    )


_pg_ok: bool | None = None


def _pg_available() -> bool:
    global _pg_ok
    if _pg_ok is None:
        try:
            eng = create_engine(PG_BASE)
            with eng.connect() as conn:
                conn.execute(text("select 1"))
            eng.dispose()
            _pg_ok = True
        except Exception:  # any failure means "not available"
            _pg_ok = False
    return _pg_ok


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each backend, removed after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigil.sqlite'}"
        return
    if not _pg_available():
        if _pg_required():
            pytest.fail(f"PostgreSQL required but not reachable at {PG_BASE}")
        pytest.skip("PostgreSQL not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for one test: its own data folder and database, demo secrets allowed."""
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", db_url)
    monkeypatch.setenv("VIGIL_DEMO", "1")
    monkeypatch.setenv("VIGIL_CONFIG", str(tmp_path / "no-config.toml"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    dispose_all()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The store for this test, migrated to head."""
    return open_store(settings)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own config or data folder."""
    monkeypatch.setenv("VIGIL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real HL7 samples in ../shared/hl7-samples (read at test time, never copied)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"HL7 samples not found at {SAMPLES}: check out beside ../shared")
    return SAMPLES
