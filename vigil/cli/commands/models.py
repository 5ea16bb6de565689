"""``vigil models``: the model registry (model cards of every deployed model)."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from vigil.cli.console import console

models_app = typer.Typer(
    help="The model registry: add or update model cards from TOML, list them, show one with its "
    "history. See the README section 'models' for the card keys.",
    no_args_is_help=True,
)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


@models_app.command("add")
def add_cmd(
    files: list[Path] = typer.Argument(..., help="Model card TOML files (one model per file)."),
    actor: str = typer.Option(None, "--actor", help="Who makes the change (audit log)."),
) -> None:
    """Create or update models from card files (matched by name; history is kept).

    A model that ingest created from a feed (status 'unregistered') is completed in place.
    Every file is checked first: nothing is written when one is invalid.
    """
    from models.registry import add_cards
    from vigil.store.db import open_store

    outcomes = add_cards(open_store(), files, actor=_actor(actor))
    for o in outcomes:
        what = f" ({', '.join(o.changed)})" if o.changed and o.action == "updated" else ""
        console.print(f"{o.name}: {o.action}{what}, version {o.version or '-'}")


@models_app.command("list")
def list_cmd() -> None:
    """List every model with its version, threshold, status and owner."""
    from rich.table import Table

    from models.registry import list_models
    from vigil.store.db import open_store

    rows = list_models(open_store())
    if not rows:
        console.print("no models yet: `vigil models add CARD.toml`")
        return
    table = Table()
    for col in ("name", "version"):
        table.add_column(col, no_wrap=True)
    for col in ("finding", "threshold", "status", "owner", "go-live"):
        table.add_column(col)
    for m in rows:
        table.add_row(
            m.name,
            m.current_version,
            m.finding,
            f"{m.operating_threshold:.2f}",
            m.status,
            m.owner,
            str(m.go_live_date or ""),
        )
    console.print(table)


@models_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="The model's name, as in `vigil models list`."),
) -> None:
    """Show one model card and its version history."""
    from rich.table import Table

    from models.registry import CARD_COLUMNS, history
    from vigil.store.db import open_store

    model, versions = history(open_store(), name)
    card = Table("key", "value", title=f"model card: {model.name}", show_header=False)
    for col in [*CARD_COLUMNS, "status", "created_at", "updated_at"]:
        value = getattr(model, col)
        card.add_row(col, "" if value is None else str(value))
    for key, value in (model.card or {}).items():
        card.add_row(key, str(value))
    console.print(card)
    hist = Table("when", "version", "by", "note", title="history")
    for v in versions:
        when = v.first_seen_at.strftime("%Y-%m-%d %H:%M UTC") if v.first_seen_at else ""
        hist.add_row(when, v.version, v.changed_by, v.note)
    console.print(hist)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
