"""``vigil users``: local dashboard accounts and their roles."""

from __future__ import annotations

import getpass

import typer

from vigil.cli.console import console

users_app = typer.Typer(
    help="Dashboard accounts: add, list and remove users and their roles.", no_args_is_help=True
)

ROLE_HELP = (
    "coe_member (reads every page), quality_officer (also acknowledges/resolves alerts and "
    "adjudicates), administrator (also edits ROI inputs and the readiness checklist), "
    "admin (everything, plus users and the audit log)"
)


@users_app.command("add")
def add_cmd(
    name: str = typer.Argument(
        ..., help="User name (as typed at login, or as the SSO header sends it)."
    ),
    role: str = typer.Option(..., "--role", "-r", help=ROLE_HELP),
    password: str | None = typer.Option(
        None, "--password", help="Password (at least 8 characters); asked for when left out."
    ),
    sso: bool = typer.Option(
        False, "--sso", help="No local password: the user signs in through the SSO proxy only."
    ),
) -> None:
    """Add a user (or change an existing user's role and password)."""
    from vigil.store.db import open_store
    from vigil.users import add_user, hash_password, parse_role

    parsed = parse_role(role)
    if not sso and password is None:
        password = getpass.getpass(f"password for {name}: ")
        again = getpass.getpass("again: ")
        if password != again:
            console.print("[red]the two passwords differ[/]")
            raise typer.Exit(1)
        hash_password(password)  # length check before touching the store
    engine = open_store()
    add_user(engine, name, parsed, None if sso else password, actor=f"cli:{getpass.getuser()}")
    console.print(f"user {name} has role {parsed.value}")


@users_app.command("list")
def list_cmd() -> None:
    """List users and their roles."""
    from vigil.store.db import open_store
    from vigil.users import list_users

    for u in list_users(open_store()):
        kind = "local password" if u.password_hash else "SSO only"
        console.print(f"{u.username}\t{u.role}\t{kind}")


@users_app.command("remove")
def remove_cmd(name: str = typer.Argument(..., help="User name to remove.")) -> None:
    """Remove a user."""
    from vigil.store.db import open_store
    from vigil.users import remove_user

    remove_user(open_store(), name, actor=f"cli:{getpass.getuser()}")
    console.print(f"user {name} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
