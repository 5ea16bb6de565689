"""``vigil profiles``: list the sender mapping profiles and check one against sample messages.

``check`` is how an integration engineer onboards a feed: point it at a profile and a few files
from the sender and it shows, per message, what the profile finds (accession, site, patient
class, model, score, version, label...) and what it misses, without touching the database.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.console import console

profiles_app = typer.Typer(
    help="Sender mapping profiles (TOML): list them, check one against sample messages.",
    no_args_is_help=True,
)

# what `check` reports per message kind, and where in the events it looks
_WANTED = {
    "order": [
        "site",
        "accession",
        "study_uid",
        "modality",
        "procedure",
        "patient_class",
        "ordered_at",
        "patient",
        "age",
    ],
    "ai": [
        "site",
        "accession",
        "study_uid",
        "patient_class",
        "model",
        "score",
        "call",
        "version",
        "scanner",
        "received_at",
        "patient",
        "age",
    ],
    "read": [
        "site",
        "accession",
        "patient_class",
        "finding",
        "label",
        "source",
        "evidence",
        "status",
        "radiologist",
        "reported_at",
        "patient",
        "age",
    ],
    "patient": ["patient", "sex", "age"],
}


def _found(ev: object) -> tuple[str, dict[str, object]]:
    from connectors.events import (
        AIResultEvent,
        OrderEvent,
        PatientMerge,
        PatientUpdate,
        ReadEvent,
    )

    if isinstance(ev, PatientMerge):
        return "patient", {"patient": ev.surviving[:12] + "…", "merged": ev.prior[:12] + "…"}
    if isinstance(ev, PatientUpdate):
        p = ev.patient
        return "patient", {
            "patient": (p.pseudonym or "")[:12] + "…" if p.pseudonym else None,
            "sex": p.sex,
            "age": p.age_at_study,
        }
    s = ev.study  # type: ignore[attr-defined]
    p = ev.patient  # type: ignore[attr-defined]
    base = {
        "site": s.site_code,
        "accession": s.accession,
        "study_uid": s.study_uid,
        "patient_class": s.patient_class,
        "patient": (p.pseudonym[:12] + "…") if p.pseudonym else None,
        "age": p.age_at_study,
    }
    if isinstance(ev, OrderEvent):
        return "order", {
            **base,
            "modality": s.modality,
            "procedure": s.procedure_code,
            "ordered_at": s.ordered_at,
        }
    if isinstance(ev, AIResultEvent):
        scanner = " ".join(x for x in (s.scanner_manufacturer, s.scanner_model) if x) or None
        return "ai", {
            **base,
            "model": ev.model_name,
            "score": ev.score,
            "call": ev.call,
            "version": ev.model_version,
            "scanner": scanner,
            "received_at": ev.received_at,
        }
    assert isinstance(ev, ReadEvent)
    return "read", {
        **base,
        "finding": ev.finding,
        "label": ev.label,
        "source": ev.label_source,
        "evidence": ev.evidence,
        "status": ev.report_status,
        "radiologist": ev.radiologist,
        "reported_at": ev.reported_at,
    }


@profiles_app.command("list")
def list_cmd() -> None:
    """List the profiles in use (shipped ones and those in profiles_dir) and what they match."""
    from rich.table import Table

    from connectors.profile import load_profiles
    from vigil.settings import load_settings

    settings = load_settings()
    table = Table("profile", "MSH-3 (MSH-4)", "maps", "results", "file")
    for p in load_profiles(settings.profiles_dir):
        match = ", ".join(p.applications) or "-"
        if p.facilities:
            match += f" ({', '.join(p.facilities)})"
        if p.fallback:
            match += " [fallback]"
        kind = "AI: " + ", ".join(m.name for m in p.models) if p.has_ai else ""
        if p.has_report:
            kind += ("; " if kind else "") + "reports: " + ", ".join(f.finding for f in p.findings)
        table.add_row(p.name, match, ", ".join(p.get("messages", "map")), kind or "-", str(p.path))
    console.print(table)


@profiles_app.command("check")
def check_cmd(
    profile: str = typer.Argument(
        ..., help="Profile name (see `vigil profiles list`) or a path to a profile TOML file."
    ),
    files: list[Path] = typer.Argument(
        ...,
        help="HL7 files from the sender (batches, several messages per file, any line ends).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
) -> None:
    """Map sample messages with PROFILE and show, per message, what it finds and misses.

    Nothing is stored. To onboard a feed: run it on a day of messages, fix what is missing.
    """
    from connectors.errors import MessageRejected
    from connectors.framing import split_messages
    from connectors.pipeline import Pipeline
    from connectors.profile import load_profile, load_profiles
    from vigil.errors import NotFoundError
    from vigil.settings import load_settings

    settings = load_settings()
    candidate = Path(profile)
    if candidate.suffix == ".toml" and candidate.is_file():
        prof = load_profile(candidate)
    else:
        by_name = {p.name: p for p in load_profiles(settings.profiles_dir)}
        if profile not in by_name:
            raise NotFoundError(
                f"no profile named {profile!r}; known: {', '.join(sorted(by_name))} "
                "(or give the path of a .toml file)"
            )
        prof = by_name[profile]
    # the named profile handles every message, whatever its MSH-3 says
    forced = load_profile(prof.path)
    forced.data["match"]["fallback"] = True
    forced.data["match"]["sending_application"] = []
    forced.data["match"]["sending_facility"] = []
    pipe = Pipeline(settings, profiles=[forced])
    totals = {"mapped": 0, "ignored": 0, "rejected": 0}
    missing_count: dict[str, int] = {}
    for path in files:
        for i, raw in enumerate(split_messages(path.read_bytes()), 1):
            where = f"{path.name}#{i}"
            try:
                out = pipe.handle(raw)
            except MessageRejected as exc:
                totals["rejected"] += 1
                console.print(
                    f"[bold red]✗ {where}[/] {exc.message_type or '?'} "
                    f"{exc.control_id or ''}: [red]{exc.reason_code}[/] — {exc.reason}",
                    highlight=False,
                )
                continue
            totals[out.outcome] += 1
            if out.outcome == "ignored":
                console.print(
                    f"[yellow]- {where}[/] {out.message_type} {out.control_id}: "
                    f"ignored — {out.note}",
                    highlight=False,
                )
                continue
            console.print(
                f"[green]✓ {where}[/] {out.message_type} {out.control_id}: "
                f"{len(out.events)} event(s)",
                highlight=False,
            )
            for ev in out.events:
                kind, found = _found(ev)
                shown = [f"{k}={found[k]}" for k in found if found[k] not in (None, "")]
                missed = [k for k in _WANTED[kind] if found.get(k) in (None, "")]
                for k in missed:
                    missing_count[k] = missing_count.get(k, 0) + 1
                console.print(f"    {type(ev).__name__}: " + ", ".join(shown), highlight=False)
                if missed:
                    console.print(f"    [yellow]missing:[/] {', '.join(missed)}", highlight=False)
    console.print(
        f"profile {prof.name}: {totals['mapped']} mapped, {totals['ignored']} ignored, "
        f"{totals['rejected']} rejected"
        + (
            (
                "; most often missing: "
                + ", ".join(
                    f"{k} ({n})" for k, n in sorted(missing_count.items(), key=lambda x: -x[1])
                )
            )
            if missing_count
            else ""
        ),
        highlight=False,
    )
    if totals["rejected"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
