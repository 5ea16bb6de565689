"""``vigil deadletters``: messages Vigil could not parse or map — list, replay, purge."""

from __future__ import annotations

import typer

from vigil.cli.console import console

dl_app = typer.Typer(
    help="Messages that could not be parsed or mapped: list reasons, replay, purge.",
    no_args_is_help=True,
)


@dl_app.command("list")
def list_cmd(
    reason: str = typer.Option(None, "--reason", help="Only this reason code."),
    limit: int = typer.Option(50, "--limit", help="How many recent dead letters to show."),
    pending: bool = typer.Option(False, "--pending", help="Only those not yet replayed."),
) -> None:
    """Counts by reason, then the most recent dead letters (reasons only, never message content)."""
    from rich.table import Table

    from connectors.deadletters import list_dead_letters, reasons_summary
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    engine = open_store(get_settings())
    summary = reasons_summary(engine)
    if not summary:
        console.print("no dead letters")
        return
    t = Table(title="dead letters by reason")
    for col in ("reason code", "total", "pending", "latest"):
        t.add_column(col)
    for r in summary:
        t.add_row(r.reason_code, str(r.total), str(r.pending), f"{r.latest:%Y-%m-%d %H:%M}")
    console.print(t)
    rows = list_dead_letters(engine, reason=reason, limit=limit, pending_only=pending)
    t = Table(title=f"latest {len(rows)}")
    for col in ("id", "received", "sender", "MSH-10", "type", "reason code", "replay"):
        t.add_column(col, no_wrap=col != "replay")
    t.add_column("reason", overflow="fold", min_width=30)
    for r in rows:
        t.add_row(
            str(r.id),
            f"{r.received_at:%Y-%m-%d %H:%M}" if r.received_at else "",
            r.sender,
            r.control_id,
            r.message_type,
            r.reason_code,
            r.replay_outcome or "",
            r.reason,
        )
    console.print(t)


@dl_app.command("replay")
def replay_cmd(
    ids: list[int] = typer.Option(None, "--id", help="Dead letter id (repeatable)."),
    reason: str = typer.Option(None, "--reason", help="Every pending dead letter with this code."),
) -> None:
    """Run pending dead letters through the pipeline again (after fixing a profile).

    With neither --id nor --reason, every pending dead letter is replayed. Those that now map
    are stored; the others stay, with the new reason in the replay column.
    """
    from connectors.deadletters import replay
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    settings = get_settings()
    counts = replay(open_store(settings), settings, ids=ids or (), reason=reason)
    if not counts:
        console.print("nothing to replay")
        return
    for outcome, n in counts.most_common():
        console.print(f"{outcome}: {n}")


@dl_app.command("purge")
def purge_cmd(
    all_: bool = typer.Option(False, "--all", help="Delete every dead letter, whatever its age."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete dead letters older than deadletter_retention_days (or all of them with --all)."""
    from datetime import UTC, datetime

    from connectors.deadletters import purge
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    settings = get_settings()
    if all_ and not yes and not typer.confirm("Delete EVERY dead letter? They cannot be replayed"):
        raise typer.Exit(1)
    n = purge(
        open_store(settings),
        now=datetime.now(UTC),
        retention_days=settings.deadletter_retention_days,
        purge_all=all_,
    )
    scope = "all" if all_ else f"older than {settings.deadletter_retention_days} days"
    console.print(f"purged {n} dead letter(s) ({scope})")


def register(app: typer.Typer) -> None:
    app.add_typer(dl_app, name="deadletters")
