"""One call from store to files: gather -> monitors -> content -> HTML -> PDF.

The CLI and the benchmark both use :func:`write_pack`; tests also call the pure steps one by one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from reports.content import build_pack
from reports.gather import PackInputs, gather
from reports.monitor_results import model_results
from reports.pack import PackContent
from reports.render_html import PAPER_SIZES, render_html
from reports.render_pdf import render_pdf
from reports.window import Window
from vigil.errors import InvalidInputError


@dataclass(slots=True)
class PackFiles:
    pdf: Path
    html: Path
    content: PackContent
    timings_s: dict[str, float] = field(default_factory=dict)


def check_paper(paper: str) -> str:
    p = paper.strip().lower()
    if p not in PAPER_SIZES:
        raise InvalidInputError(f"--paper must be a4 or letter; got {paper!r}")
    return p


def prepare_out(out_dir: Path) -> Path:
    """Create the output folder, or say in one line why it cannot be used."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--out {out_dir} is a file; give a folder for the pack")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"--out {out_dir} cannot be created: {exc.strerror}") from None
    return out_dir


def content_from_inputs(
    inputs: PackInputs, *, now: datetime | None = None, timings: dict[str, float] | None = None
) -> PackContent:
    """Run the monitors over the gathered frame and assemble the pack's content."""
    from vigil import __version__

    t = time.perf_counter()
    results: dict[str, dict[str, Any]] = model_results(inputs)
    if timings is not None:
        timings["monitors"] = time.perf_counter() - t
    t = time.perf_counter()
    content = build_pack(
        inputs, results, generated_at=now or datetime.now(UTC), vigil_version=__version__
    )
    if timings is not None:
        timings["content"] = time.perf_counter() - t
    return content


def render_files(
    content: PackContent, out_dir: Path, paper: str, timings: dict[str, float] | None = None
) -> tuple[Path, Path]:
    """Write pack.html and pack.pdf (same HTML, so the two cannot disagree)."""
    prepare_out(out_dir)
    t = time.perf_counter()
    html = render_html(content, check_paper(paper))
    if timings is not None:
        timings["html"] = time.perf_counter() - t
    t = time.perf_counter()
    pdf = render_pdf(html)
    if timings is not None:
        timings["pdf"] = time.perf_counter() - t
    html_path, pdf_path = out_dir / "pack.html", out_dir / "pack.pdf"
    html_path.write_text(html, encoding="utf-8")
    pdf_path.write_bytes(pdf)
    return pdf_path, html_path


def write_pack(
    engine: Engine, window: Window, out_dir: Path, *, model: str | None = None, paper: str = "a4"
) -> PackFiles:
    """Gather, compute and render the pack for ``window`` into ``out_dir``."""
    paper = check_paper(paper)
    prepare_out(out_dir)  # fail before the slow part
    timings: dict[str, float] = {}
    t = time.perf_counter()
    inputs = gather(engine, window, model=model)
    timings["load"] = time.perf_counter() - t
    content = content_from_inputs(inputs, timings=timings)
    pdf, html = render_files(content, out_dir, paper, timings)
    return PackFiles(pdf=pdf, html=html, content=content, timings_s=timings)
