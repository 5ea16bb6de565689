"""``vigil simulate``: write a simulated hospital network's HL7 feeds and their ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.console import console

HELP = """Simulate a hospital network: four sites, two deployed AI models (neurovue-ich on head CT,
lungsight-nodule on chest CT), and the HL7 v2.5 feeds an interface engine would forward to Vigil.

Writes to --out: feeds/<SENDER>/<YYYY-MM>.hl7 (RADIS, SYNRIS, NEUROVUE, LUNGSIGHT),
manifest.json (the answer key: true per-subgroup performance, injected events, malformed
messages), truth.parquet (one row per study) and models/<name>.toml (model cards for
`vigil models add`). The same --seed gives the same bytes.

Example: vigil simulate --studies 20000 --months 6 --seed 7 --out sim/
"""


def register(app: typer.Typer) -> None:
    @app.command("simulate", help=HELP)
    def simulate_cmd(
        out: Path = typer.Option(..., "--out", help="Folder to write (must be empty, or --force)."),
        studies: int = typer.Option(20_000, "--studies", help="Number of imaging studies."),
        months: int = typer.Option(12, "--months", help="Length of the simulated period."),
        seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same bytes."),
        start: str = typer.Option(
            "2025-11-01", "--start", help="First day of the period, YYYY-MM-DD (UTC)."
        ),
        stable: bool = typer.Option(
            False, "--stable", help="No injected events: a strictly stationary network."
        ),
        mess: float = typer.Option(
            0.05, "--mess", help="Share of messy messages, 0-1 (CRLF/LF, BOM, Z-segments, ...)."
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace a previous simulation in a non-empty --out."
        ),
        workers: int | None = typer.Option(
            None, "--workers", help="Processes writing months (default: 2 for big runs)."
        ),
        mllp: str | None = typer.Option(
            None,
            "--mllp",
            help="Also stream every message, in send order, to an MLLP listener at HOST:PORT "
            "(e.g. a running `vigil listen`), and count its ACKs.",
        ),
    ) -> None:
        from vigil.cli.console import progress
        from vigil.simulate import SimulationConfig, check_out, parse_start, simulate

        if mllp is not None:
            from connectors.mllp_client import parse_address

            address = parse_address(mllp)  # a bad address fails before any work
        config = SimulationConfig(
            studies=studies, months=months, seed=seed, start=parse_start(start),
            stable=stable, mess=mess, out=out, force=force, workers=workers,
        ).validate()  # fmt: skip
        check_out(config)
        with progress() as bar:
            task = bar.add_task("writing HL7 messages", total=None)

            def update(stage: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = simulate(config, progress=update)
            bar.update(task, description="done")
        man = result.manifest
        console.print(
            f"[bold]{result.studies:,}[/] studies, [bold]{result.messages:,}[/] messages "
            f"({result.bytes_written / 1e6:,.1f} MB) in {result.out}"
        )
        console.print(
            f"period {man['period']['start']} .. {man['period']['end']}; "
            f"{len(man['events'])} events; {len(man['malformed'])} malformed messages; "
            f"models: {', '.join(m['name'] for m in man['models'])}"
        )
        for e in man["events"]:
            where = e["site"] or e["subgroup"] or ""
            console.print(f"  {e['start']}  {e['kind']:<22} {e['models'][0]:<17} {where}")
        if mllp is not None:
            from connectors.mllp_client import send_messages
            from vigil.simulate import iter_messages

            with progress() as bar:
                task = bar.add_task(f"streaming to {mllp}", total=result.messages)
                codes = send_messages(
                    *address,
                    (raw for _sender, raw in iter_messages(config)),
                    on_ack=lambda n: bar.advance(task, n),
                )
            console.print(
                f"streamed {sum(codes.values()):,} messages to {mllp}: "
                + ", ".join(f"{n:,} {code}" for code, n in sorted(codes.items()))
            )
