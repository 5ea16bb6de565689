"""``vigil export cases``: the case frame (what every monitor reads) as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.console import console
from vigil.errors import InvalidInputError

export_app = typer.Typer(help="Export data for analysis outside Vigil.", no_args_is_help=True)

FORMATS = {".csv": "csv", ".parquet": "parquet"}


def write_frame(frame, out: Path) -> None:
    """Write the case frame; the suffix picks the format (Parquet keeps every dtype)."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"--out {out}: the file name must end in .csv or .parquet (got {out.suffix or 'none'})"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")


@export_app.command("cases")
def cases_cmd(
    out: Path = typer.Option(..., "--out", help="FILE.csv or FILE.parquet."),
    since: str | None = typer.Option(None, "--since", help="Exams on or after (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Exams before (YYYY-MM-DD)."),
    model: str | None = typer.Option(None, "--model", help="Only this model's cases."),
) -> None:
    """Write the case frame: one row per study x model x finding with score, AI call, reference
    label and its source, demographics, site, scanner and timestamps (no names, MRNs or reports).

    Example: [bold]vigil export cases --out cases.parquet --since 2026-01-01[/]
    """
    from vigil.caseframe import load_case_frame
    from vigil.cli.commands.monitor import parse_when
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    if out.suffix.lower() not in FORMATS:
        write_frame(None, out)  # raises the friendly error before any work
    frame = load_case_frame(
        open_store(get_settings()),
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        model=model,
    )
    write_frame(frame, out)
    console.print(f"{len(frame):,} cases written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
