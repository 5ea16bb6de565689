"""``vigil monitor``: run every monitor over the store, save the run, raise or update alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from vigil.cli.console import console, err_console
from vigil.errors import InvalidInputError


def parse_when(value: str | None, option: str) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO timestamp; naive means UTC."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM, e.g. 2026-03-01"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_intersections(value: str | None) -> tuple[tuple[str, str], ...]:
    """``sex:age_band,site:patient_class`` -> (("sex", "age_band"), ("site", "patient_class"))."""
    from monitors.frame import SUBGROUP_ATTRIBUTES

    if not value:
        return ()
    known = ", ".join(SUBGROUP_ATTRIBUTES)
    pairs = []
    for part in value.split(","):
        bits = [b.strip() for b in part.strip().split(":")]
        if len(bits) != 2 or not all(bits):
            raise InvalidInputError(
                f"--intersections {part.strip()!r} is not a pair; write ATTRIBUTE:ATTRIBUTE, "
                f"e.g. sex:age_band (attributes: {known})"
            )
        unknown = [b for b in bits if b not in SUBGROUP_ATTRIBUTES]
        if unknown:
            raise InvalidInputError(
                f"--intersections: unknown attribute {unknown[0]!r}; use one of {known}"
            )
        if bits[0] == bits[1]:
            raise InvalidInputError(
                f"--intersections {part.strip()!r} pairs an attribute with itself"
            )
        pairs.append((bits[0], bits[1]))
    return tuple(dict.fromkeys(pairs))


def _kpi(est: dict[str, Any] | None) -> str:
    if not est:
        return "-"
    if est.get("status") == "ok" and est.get("value") is not None:
        return f"{est['value']:.3f} ({est['ci_low']:.3f}-{est['ci_high']:.3f}) n={est['n']}"
    words = "insufficient" if est.get("status") == "insufficient_data" else "undefined"
    return f"{words} (n={est.get('n', 0)})"


def print_summary(results: dict[str, Any]) -> None:
    """Per model KPIs with CI and n, drift, and what happened to alerts."""
    from rich.table import Table

    run = results["run"]
    console.print(
        f"monitor run {run.get('run_id') or '(not stored)'}: {run['n_rows']:,} cases, "
        f"exams {(run.get('data_from') or '-')[:10]} .. {(run.get('data_to') or '-')[:10]}"
    )
    if not results["models"]:
        console.print(
            "no models in the store yet: register them with `vigil models add CARD.toml`, "
            "then `vigil ingest` their feeds"
        )
        return
    table = Table(title="Models (post-reference period)", show_lines=False)
    for col in ("model", "cases", "sensitivity", "specificity", "AUC", "drifted windows"):
        table.add_column(col)
    for name, res in results["models"].items():
        perf = res.get("performance") or {}
        metrics = perf.get("metrics") or {}
        drifted = [w["window"] for w in res.get("windows", []) if w["drift"]["drifted"]]
        table.add_row(
            name,
            f"{res.get('counts', {}).get('cases', 0):,}",
            _kpi(metrics.get("sensitivity")),
            _kpi(metrics.get("specificity")),
            _kpi(metrics.get("auc")),
            ", ".join(drifted) or "none",
        )
    console.print(table)
    counts = results.get("alert_counts", {})
    console.print(
        "alerts: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("raised", "updated", "reopened"))
        + (f"; {counts['open_total']} open in total" if "open_total" in counts else "")
    )
    new = [a for a in results.get("alerts", []) if a.get("action") in ("raised", "reopened")]
    if new:
        t = Table(title="New alerts")
        for col in ("id", "kind", "severity", "summary"):
            t.add_column(col)
        for a in new:
            t.add_row(str(a.get("alert_id")), a["kind"], a["severity"], a["summary"])
        console.print(t)
    for e in results.get("errors", []):
        err_console.print(f"[yellow]warning:[/] {e['model']}: {e['monitor']} failed: {e['error']}")


def monitor_cmd(
    model: str | None = typer.Option(
        None, "--model", help="Only this model (its name as in `vigil models list`)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only exams on or after this date (YYYY-MM-DD, UTC)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Only exams before this date (YYYY-MM-DD, UTC)."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write every result (schema: monitors/SCHEMA.md) to this file."
    ),
    evidently_report: Path | None = typer.Option(
        None,
        "--evidently-report",
        help="Write Evidently's HTML data-drift report per model (reference vs latest month) "
        "into this folder.",
    ),
    intersections: str | None = typer.Option(
        None,
        "--intersections",
        help="Also compare groups defined by two attributes at once in the subgroup scan, as "
        "ATTRIBUTE:ATTRIBUTE pairs separated by commas, e.g. sex:age_band,site:patient_class "
        "(attributes: sex, age_band, race, ethnicity, site, scanner_manufacturer, "
        "patient_class).",
    ),
) -> None:
    """Run every monitor: performance vs the model card, control charts, thresholds, data drift,
    subgroups, re-scoring agreement and AI coverage. Saves the run and raises or updates alerts.

    Example: [bold]vigil monitor --json run.json[/]
    """
    import json

    from vigil.monitoring import MonitorConfig, run_monitors
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    since_t, until_t = parse_when(since, "--since"), parse_when(until, "--until")
    if since_t and until_t and since_t >= until_t:
        raise InvalidInputError("--since must be before --until")
    config = MonitorConfig(intersections=parse_intersections(intersections))
    engine = open_store(get_settings())
    with err_console.status("running monitors..."):
        results = run_monitors(
            engine,
            model=model,
            since=since_t,
            until=until_t,
            evidently_report_dir=evidently_report,
            config=config,
        )
    print_summary(results)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
        console.print(f"results written to {json_out}")
    for p in results["run"].get("evidently_reports", []):
        console.print(f"Evidently report: {p}")


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_cmd)
