"""``vigil report``: the monthly committee pack (PDF and HTML) for one calendar month."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.console import console, err_console


def report_cmd(
    period: str = typer.Option(
        ...,
        "--period",
        help="The month to report, as YYYY-MM (e.g. 2026-10). The data window is "
        "that calendar month in UTC, by exam time.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder to write pack.pdf and pack.html into (created if missing)."
    ),
    model: str = typer.Option(
        None, "--model", help="Only this model (its name as in `vigil models list`)."
    ),
    paper: str = typer.Option("a4", "--paper", help="Paper size of the PDF: a4 or letter."),
) -> None:
    from reports.build import check_paper, write_pack
    from reports.window import parse_period
    from vigil.store.db import open_store

    window = parse_period(period)
    paper = check_paper(paper)
    with err_console.status(f"building the committee pack for {window.label} ..."):
        files = write_pack(open_store(), window, out, model=model, paper=paper)
    c = files.content
    console.print(
        f"committee pack for {window.label}: {len(c.sections)} model(s), {c.n_cases} cases "
        f"(window {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}, end excluded)"
    )
    console.print(f"  PDF:  {files.pdf}")
    console.print(f"  HTML: {files.html}")
    console.print(f"  same data: {c.export_command}")


HELP = "\n\n".join(
    [
        "Write the committee pack for one month: pack.pdf and a self-contained pack.html "
        "(inline charts and styles, opens offline).",
        "Per model: KPIs with 95% CIs against baseline and target, monthly trends, control "
        "chart, alerts opened/acknowledged/resolved with their notes, fairness, drift, "
        "re-scoring and discordance. Then the programme: volume, turnaround and read time "
        "(measured vs assumed), ROI, readiness checklist, inventory changes, sign-off.",
        "The cover names the data window and the Vigil version, and the `vigil export cases` "
        "command that writes exactly the cases behind the numbers.",
        "Example: [bold]vigil report --period 2026-10 --out packs/2026-10[/]",
    ]
)


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP)(report_cmd)
