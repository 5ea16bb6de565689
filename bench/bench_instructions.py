"""Instructions per message of parse+map, compiled and from source: a figure the load can't move.

This machine's speed swings by 50 % from minute to minute (shared hosts), so a few percent of
difference cannot be read off timings. valgrind's callgrind counts the instructions a run
executes; the marginal count per message (a run of ``--n`` messages minus a run of ``--n0``,
divided by the difference) leaves out start-up, imports and profile loading.

    .venv/bin/python bench/bench_instructions.py [--n0 500] [--n 2500] [--feeds SIM/feeds]

Messages: every 3rd message of four middle months of every sender's files (all types), in file
order; a fresh ``Pipeline``. Needs ``valgrind`` (Debian package). Runs the compiled build and
the source (``VIGIL_CONNECTORS_SOURCE=1``) in turn.
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
import sys
from pathlib import Path
from connectors.framing import split_messages
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

feeds, n = Path(sys.argv[1]), int(sys.argv[2])
files = sorted(feeds.rglob("*.hl7"))
months = sorted({f.name for f in files})
middle = set(months[len(months) // 2 - 2 : len(months) // 2 + 2])
msgs = []
for f in files:
    if f.name in middle:  # four months of every sender
        msgs.extend(split_messages(f.read_bytes()))
msgs = msgs[::3][:n]
assert len(msgs) == n, f"only {len(msgs)} messages in {feeds}"
pipe = Pipeline(load_settings(demo=True))
for raw in msgs:
    try:
        pipe.handle(raw)
    except Exception:
        pass
"""


def instructions(feeds: Path, n: int, source: bool) -> int:
    env = {**os.environ, "VIGIL_CONNECTORS_SOURCE": "1" if source else "0"}
    with tempfile.TemporaryDirectory() as tmp:
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        feeds = args.feeds
        if feeds is None:
            from vigil.simulate import SimulationConfig, simulate

            simulate(SimulationConfig(studies=8000, months=12, seed=1, out=Path(tmp) / "sim"))
            feeds = Path(tmp) / "sim" / "feeds"
        for label, source in (("compiled build", False), ("source (Python)", True)):
            a = instructions(feeds, args.n0, source)
            b = instructions(feeds, args.n, source)
            per = (b - a) / (args.n - args.n0)
            print(f"{label:<16}: {per:>10,.0f} instructions per message (parse+map)")


if __name__ == "__main__":
    main()
