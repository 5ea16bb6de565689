"""Parse+map throughput of the connectors' hot path, per core, with baselines from the same run.

Messages: the simulator's feed files when a simulation folder is given (``--feeds DIR``: the
``feeds/`` folder of ``vigil simulate --out DIR``), else messages written from the feed contract
by tests/connectors_feedgen.py (same senders, types and messiness). Figures:

- ``vigil``: ``Pipeline.handle`` (decode, split, profile lookup, mapping, pseudonyms, labels),
- ``plain split``: decode + split into segments and fields, nothing else (the floor),
- ``hl7apy``: ``parse_message(find_groups=False)``, parse only, on a subset (it is slow).

Single process, so the figures are per core. Run: ``.venv/bin/python bench/bench_parse.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def _messages(feeds: Path | None, n: int) -> tuple[list[bytes], str]:
    from connectors.framing import split_messages

    if feeds is not None:
        out: list[bytes] = []
        for path in sorted(feeds.rglob("*.hl7")):
            out.extend(split_messages(path.read_bytes()))
            if len(out) >= n:
                break
        return out[:n], f"simulator feeds in {feeds}"
    from connectors_feedgen import generate

    return [m for s in generate(n, seed=1, mess=0.05) for m in split_messages(s.raw)], (
        "messages written from the feed contract (tests/connectors_feedgen.py)"
    )


def _rate(fn, items: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(items)
        best = min(best, time.perf_counter() - t)
    return len(items) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="messages (default 20000)")
    ap.add_argument("--feeds", type=Path, default=None, help="a simulation's feeds/ folder")
    ap.add_argument("--hl7apy", type=int, default=300, help="messages for the hl7apy baseline")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from connectors.errors import MessageRejected
    from connectors.pipeline import Pipeline
    from vigil.settings import load_settings

    msgs, source = _messages(args.feeds, args.n)
    pipe = Pipeline(load_settings(demo=True))

    def vigil(items: list[bytes]) -> None:
        for raw in items:
            try:
                pipe.handle(raw)
            except MessageRejected:
                pass

    def plain(items: list[bytes]) -> None:
        for raw in items:
            [seg.split("|") for seg in raw.decode("utf-8", "replace").split("\r")]

    def apy(items: list[bytes]) -> None:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.parser import parse_message

        for raw in items:
            parse_message(raw.decode("utf-8", "replace").rstrip("\r"), find_groups=False,
                          validation_level=VALIDATION_LEVEL.TOLERANT)

    vigil(msgs[:500])  # warm caches (pseudonyms, routes) as a running listener would have them
    r_vigil = _rate(vigil, msgs, args.repeat)
    r_plain = _rate(plain, msgs, args.repeat)
    r_apy = _rate(apy, msgs[: args.hl7apy], 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"messages: {len(msgs)} ({source}), mean {sum(map(len, msgs)) / len(msgs):.0f} bytes")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, load average {load:.1f} at the end")
    print(f"{'what':<34}{'msg/s per core':>16}")
    print(f"{'vigil parse+map (Pipeline.handle)':<34}{r_vigil:>16,.0f}")
    print(f"{'baseline: plain split':<34}{r_plain:>16,.0f}")
    print(f"{'baseline: hl7apy parse only':<34}{r_apy:>16,.0f}")
    print(f"vigil is {r_vigil / r_apy:.0f}x hl7apy and {r_vigil / r_plain:.2f}x a plain split")


if __name__ == "__main__":
    main()
