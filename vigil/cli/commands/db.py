"""``vigil db``: migrate and inspect the store."""

from __future__ import annotations

import typer

from vigil.cli.console import console

db_app = typer.Typer(help="The store: migrate the schema, show where it is.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_cmd() -> None:
    """Migrate the database to the latest schema (other commands do this by themselves)."""
    from vigil.settings import get_settings
    from vigil.store.db import make_engine, upgrade

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    rev = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    console.print(f"database {url} is at revision {rev}")


@db_app.command("current")
def current_cmd() -> None:
    """Print the database URL and its schema revision."""
    from vigil.settings import get_settings
    from vigil.store.db import current_revision_safe, head_revision, make_engine

    engine = make_engine(get_settings().effective_database_url)
    rev = current_revision_safe(engine)
    head = head_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    state = "up to date" if rev == head else f"behind (head is {head}; run `vigil db upgrade`)"
    console.print(f"database {url}: revision {rev or 'none'} — {state}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
