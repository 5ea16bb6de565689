"""Alembic environment: uses the engine handed in by vigil.store.db (or VIGIL settings)."""

from alembic import context
from sqlmodel import SQLModel

import vigil.store.tables  # noqa: F401  (registers every table on the metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from vigil.settings import get_settings
        from vigil.store.db import make_engine

        engine = make_engine(get_settings().effective_database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
