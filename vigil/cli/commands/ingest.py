"""``vigil ingest``: load HL7 v2 files (an archive, a backfill, simulated feeds) into the store."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.console import console, progress


def ingest_cmd(
    paths: list[Path] = typer.Argument(
        ..., help="HL7 files and/or folders (searched recursively), in any mix."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        help="Worker processes that parse, map and store (default: CPUs + 1, at most 4; "
        "0 does everything in the main process).",
    ),
) -> None:
    """Ingest HL7 v2 files into the store: parse, map, pair, dead-letter what cannot be read.

    Safe to run again on the same files: messages already received (same sending facility and
    MSH-10) are counted as duplicates and change nothing.
    """
    from rich.table import Table

    from connectors.ingest import ingest_files, iter_files
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    settings = get_settings()
    files = iter_files(paths)
    if not files:
        console.print("no HL7 files found")
        raise typer.Exit(1)
    engine = open_store(settings)
    total = sum(f.stat().st_size for f in files)
    with progress() as bar:
        task = bar.add_task(f"ingesting {len(files)} file(s)", total=total)

        def on_progress(done: int, messages: int) -> None:
            bar.update(task, completed=done, description=f"ingesting: {messages:,} messages")

        summary = ingest_files(files, settings, engine, workers=workers, on_progress=on_progress)
        bar.update(task, completed=total)
    table = Table(
        title=f"{summary.messages:,} messages in {summary.seconds:.1f} s ({summary.rate:,.0f}/s)"
    )
    table.add_column("outcome")
    table.add_column("messages", justify="right")
    for key in ("stored", "duplicate", "ignored", "deadletter"):
        table.add_row("dead letters" if key == "deadletter" else key, f"{summary.outcomes[key]:,}")
    for reason, n in summary.dead_by_reason.most_common():
        table.add_row(f"  dead letter: {reason}", f"{n:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
