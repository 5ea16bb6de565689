"""The ``vigil`` application: collects one module per subcommand from ``vigil.cli.commands``.

Each module there defines ``register(app: typer.Typer) -> None``. Commands import heavy libraries
inside their functions so that ``vigil --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from vigil import __version__
from vigil.cli.console import err_console
from vigil.errors import VigilError


class VigilGroup(TyperGroup):
    """Turns a VigilError raised by any command into one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VigilError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="vigil",
    cls=VigilGroup,
    help="Vigil: governance and monitoring for AI in medical imaging.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Vigil: governance and monitoring for AI in medical imaging."""


def _register_commands() -> None:
    from vigil.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    app()
