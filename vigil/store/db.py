"""Engine, sessions and migrations.

Every command calls :func:`open_store`, which migrates a new (or older) database to the latest
schema by itself; ``vigil db upgrade`` does the same explicitly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from vigil.errors import StoreError
from vigil.settings import Settings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (dashboard) never block the listener
    cur.execute("PRAGMA synchronous=FULL")  # a commit survives power loss: ACK means durable
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _null(_value: None) -> None:
    return None


def register_sqlite_fast_binding() -> None:
    """Bind None and bool through sqlite3's adapter table, exactly as it binds them anyway.

    Python 3.11's sqlite3 binds only exact int, float and str directly; any other parameter goes
    through its adapter protocol, which for None and bool (no adapter registered) means two
    failed attribute look-ups, each building and discarding an AttributeError, before the
    value is bound as it is. A study row carries a dozen NULLs, and that cost ~7 % of all the
    instructions of a backfill (bench/README.md). A registered adapter is one dict hit: None
    stays NULL, a bool becomes the same 0/1 integer.
    """
    sqlite3.register_adapter(type(None), _null)
    sqlite3.register_adapter(bool, int)


def _postgresql_session(dbapi_conn, _record) -> None:
    # psycopg prepares a statement server-side after 5 runs, and PostgreSQL may then keep one
    # generic plan made while the tables were empty: a sequential scan of `study` per id
    # look-up, which stalled a 1M-study backfill (a server without autovacuum never replans
    # it). Plan each execution with its values and the tables' current size instead.
    cur = dbapi_conn.cursor()
    cur.execute("SET plan_cache_mode = force_custom_plan")
    cur.close()
    dbapi_conn.commit()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder when needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        register_sqlite_fast_binding()
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _postgresql_session)
    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> str | None:
    """Migrate to the latest schema; returns the revision now in force."""
    try:
        command.upgrade(alembic_config(engine), "head")
        return current_revision(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot reach or migrate the database: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {exc}") from exc


_engines: dict[str, Engine] = {}


def open_store(settings: Settings | None = None, *, migrate: bool = True) -> Engine:
    """The engine for the configured database, migrated to head (once per process and URL)."""
    settings = settings or get_settings()
    url = settings.effective_database_url
    engine = _engines.get(url)
    if engine is None:
        engine = make_engine(url)
        if migrate and current_revision_safe(engine) != head_revision(engine):
            upgrade(engine)
        _engines[url] = engine
    return engine


def current_revision_safe(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    except OperationalError as exc:
        raise StoreError(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. Check VIGIL_DATABASE_URL."
        ) from exc


def dispose_all() -> None:
    """Close every cached engine (tests, and before a fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
