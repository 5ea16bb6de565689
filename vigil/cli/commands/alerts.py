"""``vigil alerts``: list alerts, acknowledge and resolve them (each change is audited)."""

from __future__ import annotations

import typer

from vigil.cli.console import console

alerts_app = typer.Typer(
    help="Monitor alerts: list them, acknowledge (I am on it) and resolve (what was done).",
    invoke_without_command=True,
)


def _engine():
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    return open_store(get_settings())


@alerts_app.callback()
def _default(ctx: typer.Context) -> None:
    """Without a subcommand: list the open alerts."""
    if ctx.invoked_subcommand is None:
        list_cmd(status="open", kind=None, model=None, as_json=False)


@alerts_app.command("list")
def list_cmd(
    status: str | None = typer.Option(
        None, "--status", help="open / acknowledged / resolved (default: all)."
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="performance / drift / fairness / rescoring / coverage."
    ),
    model: str | None = typer.Option(None, "--model", help="Only this model's alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List alerts, newest first."""
    import json

    from rich.table import Table

    from vigil.alerts import list_alerts
    from vigil.store.db import session_scope

    with session_scope(_engine()) as s:
        rows = list_alerts(s, status=status, kind=kind, model=model)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        console.print("no alerts" + (f" with status {status}" if status else ""))
        return
    t = Table()
    t.add_column("id", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    t.add_column("severity", no_wrap=True)
    t.add_column("last seen", no_wrap=True)
    t.add_column("summary (model, where, what)", ratio=1)
    for a in rows:
        t.add_row(
            str(a["alert_id"]),
            a["status"],
            a["kind"],
            a["severity"],
            (a["last_seen"] or "")[:10],
            a["summary"],
        )
    console.print(t)


@alerts_app.command("ack")
def ack_cmd(
    alert_id: int = typer.Argument(..., help="The alert's id (from `vigil alerts list`)."),
    by: str = typer.Option(..., "--by", help="Who acknowledges (your user name)."),
    note: str = typer.Option("", "--note", help="What you are doing about it."),
) -> None:
    """Acknowledge an open alert: someone is on it."""
    from vigil.alerts import acknowledge
    from vigil.store.db import session_scope

    with session_scope(_engine()) as s:
        a = acknowledge(s, alert_id=alert_id, by=by, note=note)
    console.print(f"alert {a['alert_id']} acknowledged by {a['acknowledged_by']}")


@alerts_app.command("resolve")
def resolve_cmd(
    alert_id: int = typer.Argument(..., help="The alert's id (from `vigil alerts list`)."),
    by: str = typer.Option(..., "--by", help="Who resolves (your user name)."),
    note: str = typer.Option("", "--note", help="What was found and done."),
) -> None:
    """Resolve an open or acknowledged alert."""
    from vigil.alerts import resolve
    from vigil.store.db import session_scope

    with session_scope(_engine()) as s:
        a = resolve(s, alert_id=alert_id, by=by, note=note)
    console.print(f"alert {a['alert_id']} resolved by {a['resolved_by']}")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
