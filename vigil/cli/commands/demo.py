"""``vigil demo``: the main job on the embedded default (what ./scripts/demo.sh runs)."""

from __future__ import annotations

import typer

from vigil.cli.console import console


def demo_cmd(
    studies: int = typer.Option(20_000, "--studies", help="Studies in the simulated network."),
    months: int = typer.Option(12, "--months", help="Months the simulated network covers."),
    seed: int = typer.Option(7, "--seed", help="Simulation seed (same seed, same data)."),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Serve the dashboard when the data is ready."
    ),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Dashboard port."),
) -> None:
    """Simulate a hospital network into the default SQLite database (a file in the per-user
    data folder, or VIGIL_DATABASE_URL), ingest its HL7 feeds, register its model cards, run
    re-score a sample of cases with the demo models, run every monitor, create demo accounts,
    and serve the dashboard. Safe to run again: nothing is
    stored twice.
    """
    import os

    from vigil.demo import DEMO_USERS, run_demo
    from vigil.settings import get_settings

    os.environ["VIGIL_DEMO"] = "1"  # simulated data: the public demo secrets are acceptable
    get_settings.cache_clear()
    settings = get_settings()
    summary = run_demo(
        settings, studies=studies, months=months, seed=seed, step=lambda m: console.print(m)
    )
    console.print(
        f"[bold]{summary.studies:,}[/] simulated studies in {summary.sim_dir} "
        f"({'new' if summary.simulated else 'reused'}); {summary.messages:,} messages read: "
        + ", ".join(f"{v:,} {k}" for k, v in sorted(summary.ingest.items()))
    )
    console.print(f"database: {summary.database}")
    console.print(f"models: {', '.join(summary.models)}; open alerts: {summary.alerts_open}")
    console.print(
        "re-scored cases compared with production: "
        + ", ".join(f"{m} {n:,}" for m, n in summary.rescored.items())
    )
    console.print("demo accounts (user = password): " + ", ".join(
        f"{u} ({r})" for u, r in DEMO_USERS.items()
    ))  # fmt: skip
    if serve:
        from vigil.cli.commands.dashboard import dashboard_cmd

        dashboard_cmd(port=port, host="127.0.0.1")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
