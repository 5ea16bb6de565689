"""``vigil rescore``: rerun a model on a stratified sample of cases and compare with production."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path

import typer

from vigil.cli.console import console


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        from vigil.errors import InvalidInputError

        raise InvalidInputError(f"--since {text!r}: expected a date such as 2025-11-01") from None


def rescore_cmd(
    model: str = typer.Option(..., "--model", help="Model name, as in `vigil models list`."),
    sample: int = typer.Option(
        None, "--sample", min=1, help="How many cases to re-score (default 200)."
    ),
    fraction: float = typer.Option(
        None,
        "--fraction",
        help="Or: this share of the eligible cases, 0 < F <= 1 (e.g. 0.05); not with --sample.",
    ),
    since: str = typer.Option(
        None, "--since", help="Only studies examined on or after DATE (YYYY-MM-DD)."
    ),
    device: str = typer.Option(
        "auto",
        "--device",
        help="auto (GPU when torch sees one), cpu or cuda (an error without a GPU).",
    ),
    source: str = typer.Option(
        ...,
        "--source",
        help="Where the images are: folder:PATH (a DICOM folder), dicomweb:URL "
        "(e.g. dicomweb:http://pacs:8042/dicom-web), or simulated:RUN_DIR (a `vigil simulate` "
        "folder; renders the sampled studies' DICOM files on request).",
    ),
    adapter: str = typer.Option(
        None, "--adapter", help="Adapter name (entry point) overriding the spec's adapter key."
    ),
    spec: Path = typer.Option(
        None, "--spec", help="Re-scoring spec TOML (default: the card's, or the shipped demo's)."
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed: same seed, same sample."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per forward pass."),
    workers: int = typer.Option(
        None, "--workers", min=0, help="DataLoader worker processes (default: by device)."
    ),
    no_saliency: bool = typer.Option(
        False, "--no-saliency", help="Skip Grad-CAM maps for discordant cases."
    ),
) -> None:
    """Re-score a sample of cases with the model's re-scoring spec and compare with production.

    The sample is stratified by site, month and age band, oversamples cases where the AI and the
    radiologist disagree, and is the same for the same --seed. Results are stored per case as
    each batch finishes: run the same command again after an interruption and the cases already
    scored are skipped. Cases that cannot be scored are stored with the reason. Example:

      vigil rescore --model neurovue-ich --sample 500 --source folder:/data/dicom
    """
    from models.rescore import RescoreOptions, run_rescore
    from vigil.cli.console import progress
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    try:
        actor = getpass.getuser()
    except Exception:  # no login name in some containers
        actor = "cli"
    opts = RescoreOptions(
        model=model,
        source=source,
        sample=sample,
        fraction=fraction,
        since=_parse_date(since),
        device=device,
        adapter=adapter,
        spec=spec,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        saliency=not no_saliency,
        actor=actor,
    )
    settings = get_settings()
    with progress() as bar:
        task = bar.add_task(f"re-scoring {model}", total=None)
        summary = run_rescore(
            open_store(settings),
            settings,
            opts,
            on_start=lambda n: bar.update(task, total=n),
            on_batch=lambda k: bar.advance(task, k),
        )
    s = summary
    if s.n_selected == 0:
        console.print(
            f"no eligible cases: no study has a production score of {model}"
            + (f" since {since}" if since else "")
            + " (ingest its AI results first: `vigil ingest`)"
        )
        return
    console.print(
        f"run {s.run_id} on {s.device}: {s.n_selected} sampled, {s.n_skipped} already scored, "
        f"{s.n_scored} scored, {s.n_errors} errors"
        + (
            f" ({', '.join(f'{k} {v}' for k, v in s.errors_by_code.items())})"
            if s.errors_by_code
            else ""
        )
    )
    if s.mean_abs_diff is not None:
        verdict = "[green]within tolerance[/]" if s.within_tolerance else "[red]DISAGREES[/]"
        mlo, mhi = s.mean_abs_diff_ci or (float("nan"), float("nan"))
        flo, fhi = s.flip_rate_ci or (float("nan"), float("nan"))
        console.print(
            f"agreement over {s.n_compared} cases (estimates for all eligible cases, 95% CI): "
            f"mean |diff| {s.mean_abs_diff:.4f} ({mlo:.4f}-{mhi:.4f}; tolerance "
            f"{s.tolerance['mean_abs']}), call flips {s.flip_rate:.1%} ({flo:.1%}-{fhi:.1%}; "
            f"tolerance {s.tolerance['flip_rate']:.0%}); in the sample: {s.n_flips} flips, "
            f"max |diff| {s.max_abs_diff:.4f}, {s.n_beyond_case_tolerance} beyond "
            f"{s.tolerance['case_abs']}: {verdict}"
        )
    if s.saliency_maps:
        console.print(f"{s.saliency_maps} saliency maps under {settings.data_dir / 'saliency'}")
    if s.images_per_s:
        console.print(f"model hash {s.model_hash[:16]}…, {s.images_per_s:.0f} images/s inference")


def register(app: typer.Typer) -> None:
    app.command("rescore")(rescore_cmd)
