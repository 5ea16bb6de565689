"""Instructions per message, compiled and from source: a figure the load can't move.

This machine's speed swings by 50 % from minute to minute (shared hosts), so a few percent of
difference cannot be read off timings. valgrind's callgrind counts the instructions a run
executes; the marginal count per message (a run of ``--n`` messages minus a run of ``--n0``,
divided by the difference) leaves out start-up, imports and profile loading.

    .venv/bin/python bench/bench_instructions.py [--n0 500] [--n 2500] [--feeds SIM/feeds]
        [--stage map|store]

Messages: every 3rd message of four middle months of every sender's files (all types),
interleaved by position within their file, so that every prefix has the feed's mix of senders and
types (until the fourth session of 2026-11-27 the first messages all came from the first
sender's files, i.e. AI results only); a fresh ``Pipeline``. ``--stage map`` (default)
counts parse+map; ``--stage store`` counts what a single-process ``vigil ingest`` does per
message: parse+map, flatten, and the store writer's batches into a fresh SQLite file (2,000
messages a transaction). Needs ``valgrind`` (Debian package). Runs the compiled build, the build
with ``rows`` (the writer's folding) from source, and the source (``VIGIL_CONNECTORS_SOURCE=1``)
in turn.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import sys, os
from pathlib import Path
if os.environ.get("BENCH_SOURCE_ONLY"):
    import connectors
    names = os.environ["BENCH_SOURCE_ONLY"].split(",")
    sys.meta_path.insert(0, connectors._SourceFirst(names, connectors._HERE))
from connectors.framing import split_messages
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

feeds, n = Path(sys.argv[1]), int(sys.argv[2])
files = sorted(feeds.rglob("*.hl7"))
months = sorted({f.name for f in files})
middle = set(months[len(months) // 2 - 2 : len(months) // 2 + 2])
per_file = [list(split_messages(f.read_bytes()))[::3] for f in files if f.name in middle]
# interleaved by position within its file (four months of every sender): every prefix holds
# each file's messages in proportion to the file's size, i.e. the feed's mix
keyed = [((j + 0.5) / len(ms), i, j) for i, ms in enumerate(per_file) for j in range(len(ms))]
msgs = [per_file[i][j] for _, i, j in sorted(keyed)][:n]
assert len(msgs) == n, f"only {len(msgs)} messages in {feeds}"
settings = load_settings(demo=True, **({"database_url": sys.argv[3]} if len(sys.argv) > 3 else {}))
pipe = Pipeline(settings)
if len(sys.argv) > 3:  # --stage store
    from connectors.ingest import process_raw
    from connectors.store_writer import StoreWriter
    from vigil.store.db import open_store

    key = settings.deadletter_key.get_secret_value()
    writer = StoreWriter(open_store(settings), key, bulk=True)
    for k in range(0, n, 2000):
        items = [process_raw(pipe, raw) for raw in msgs[k : k + 2000]]
        writer.write(items)  # the writer flattens and folds, as in a `vigil ingest` worker
else:
    for raw in msgs:
        try:
            pipe.handle(raw)
        except Exception:
            pass
"""


def instructions(feeds: Path, n: int, source: bool, stage: str, source_only: str = "") -> int:
    env = {**os.environ, "VIGIL_CONNECTORS_SOURCE": "1" if source else "0"}
    env["BENCH_SOURCE_ONLY"] = source_only
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run: counts repeat exactly
    with tempfile.TemporaryDirectory() as tmp:
        store = [f"sqlite:///{tmp}/store.sqlite"] if stage == "store" else []
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                "-W",
                "ignore",
                "-c",
                CHILD,
                str(feeds),
                str(n),
                *store,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit(f"no callgrind total in:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n0", type=int, default=500)
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--feeds", type=Path, default=None, help="feeds/ of a `vigil simulate` run")
    ap.add_argument("--stage", choices=("map", "store"), default="map")
    args = ap.parse_args()
    what = "parse+map" if args.stage == "map" else "parse+map+flatten+store"
    with tempfile.TemporaryDirectory() as tmp:
        feeds = args.feeds
        if feeds is None:
            from vigil.simulate import SimulationConfig, simulate

            simulate(SimulationConfig(studies=8000, months=12, seed=1, out=Path(tmp) / "sim"))
            feeds = Path(tmp) / "sim" / "feeds"
        runs = [("compiled build", False, ""), ("source (Python)", True, "")]
        if args.stage == "store":
            runs.insert(1, ("build, rows from source", False, "rows"))
        for label, source, only in runs:
            a = instructions(feeds, args.n0, source, args.stage, only)
            b = instructions(feeds, args.n, source, args.stage, only)
            per = (b - a) / (args.n - args.n0)
            print(f"{label:<24}: {per:>10,.0f} instructions per message ({what})")


if __name__ == "__main__":
    main()
