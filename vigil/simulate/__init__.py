"""A simulated hospital network for the demo, the tests and the benchmarks: four sites, two
deployed AI models, HL7 v2.5 feeds per docs/simulated-feeds.md, and the ground truth beside them.

    from vigil.simulate import SimulationConfig, simulate, iter_messages, truth_frame
    result = simulate(SimulationConfig(studies=20_000, months=6, seed=7, out=Path("sim")))
    for sender, raw in iter_messages(SimulationConfig(studies=100, months=1)):
        ...  # e.g. send over MLLP in send order

Layout: catalog (fixed facts), config (options), network (all random draws, vectorised),
scores (the AI score model and its true performance), events (scheduled changes),
reports_text (report wording), hl7_writer (message templates), feeds (message plan, files),
outputs (manifest, truth, model cards). dicom.py belongs to the re-scoring team.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.errors import InvalidInputError
from vigil.simulate.config import DEFAULT_START, SimulationConfig, parse_start

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_START",
    "SimulationConfig",
    "SimulationResult",
    "check_out",
    "iter_messages",
    "parse_start",
    "simulate",
    "truth_frame",
]

OUTPUTS = ("feeds", "models", "manifest.json", "truth.parquet")


@dataclass
class SimulationResult:
    out: Path
    studies: int
    messages: int
    bytes_written: int
    manifest: dict[str, Any] = field(repr=False)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.manifest["events"]

    @property
    def malformed(self) -> list[dict[str, Any]]:
        return self.manifest["malformed"]


def check_out(config: SimulationConfig) -> Path:
    """The output folder, or InvalidInputError when it cannot be used (changes nothing)."""
    if config.out is None:
        raise InvalidInputError("an output folder is required: --out DIR")
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not config.force:
        raise InvalidInputError(
            f"--out {out} is not empty; choose an empty folder or add --force to replace "
            "a previous simulation there"
        )
    return out


def _prepare_out(config: SimulationConfig) -> Path:
    out = check_out(config)
    if out.is_dir():
        for name in OUTPUTS:  # only what a simulation writes; anything else stays
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"--out {out} cannot be created: {exc.strerror}") from None
    return out


def _workers(config: SimulationConfig) -> int:
    if config.workers is not None:
        return config.workers
    if config.studies < 50_000:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def simulate(
    config: SimulationConfig,
    progress: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Write feeds, manifest.json, truth.parquet and models/ to ``config.out``.

    ``progress(stage, done, total)`` is called as messages are written (stage "messages").
    """
    from vigil.simulate.feeds import build_plan, write_feeds
    from vigil.simulate.network import build
    from vigil.simulate.outputs import write_outputs

    config.validate()
    out = _prepare_out(config)
    net = build(config)
    plan = build_plan(net)
    total = len(plan)
    done = 0
    if progress:
        progress("messages", 0, total)

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("messages", done, total)

    nbytes = write_feeds(net, plan, out, _workers(config), step)
    man = write_outputs(net, plan, out)
    return SimulationResult(out, net.n, total, nbytes, man)


def iter_messages(config: SimulationConfig) -> Iterator[tuple[str, bytes]]:
    """(sender, raw message bytes) for every message of the run, in send order across all
    senders; the same bytes as in the files (without a file's BOM or batch wrapper)."""
    from vigil.simulate.feeds import build_plan, iter_plan_messages
    from vigil.simulate.network import build

    config.validate()
    net = build(config)
    yield from iter_plan_messages(net, build_plan(net))


def truth_frame(out_dir: str | Path) -> pd.DataFrame:
    """The ground truth of a simulation folder: one row per study."""
    import pandas as pd

    path = Path(out_dir) / "truth.parquet"
    if not path.is_file():
        raise InvalidInputError(f"{path} not found: run `vigil simulate --out {out_dir}` first")
    return pd.read_parquet(path)
