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
import contextlib
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
        return out[:n], f"simulator feed files in {feeds}"
    try:
        from vigil.simulate import SimulationConfig, iter_messages
    except ImportError:  # no simulator: messages written from the feed contract
        from connectors_feedgen import generate

        return [m for s in generate(n, seed=1, mess=0.05) for m in split_messages(s.raw)], (
            "messages written from the feed contract (tests/connectors_feedgen.py)"
        )
    msgs: list[bytes] = []
    for _sender, raw in iter_messages(SimulationConfig(studies=max(n // 3, 100), months=3, seed=1)):
        msgs.extend(split_messages(raw))  # as `vigil ingest` does: CR segment ends
        if len(msgs) >= n:
            break
    return msgs, "vigil.simulate.iter_messages (seed 1, mess 0.05), in send order"


def _rate(fn, items: list, repeat: int) -> tuple[float, float]:
    """(messages per CPU second of this process, messages per wall second): best of repeats.

    CPU seconds measure one core's work even when other processes share the machine."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn(items)
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    return len(items) / best_cpu, len(items) / best_wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="messages (default 20000)")
    ap.add_argument("--feeds", type=Path, default=None, help="a simulation's feeds/ folder")
    ap.add_argument("--hl7apy", type=int, default=300, help="messages for the hl7apy baseline")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--by-kind",
        action="store_true",
        help="also time each sender and message type on its own (a fresh pipeline per kind)",
    )
    args = ap.parse_args()

    from connectors.errors import MessageRejected
    from connectors.labeller import labeller_for
    from connectors.pipeline import Pipeline
    from vigil.settings import load_settings

    msgs, source = _messages(args.feeds, args.n)
    settings = load_settings(demo=True)

    # a fresh pipeline (empty caches) for every repeat, built before the clock starts: only
    # repeats within the stream itself (the same MRN, a final report worded like its
    # preliminary) may hit a cache
    fresh: list[Pipeline] = []
    for _ in range(args.repeat):
        labeller_for.cache_clear()
        fresh.append(Pipeline(settings))

    def vigil(items: list[bytes]) -> None:
        pipe = fresh.pop()
        for raw in items:
            with contextlib.suppress(MessageRejected):
                pipe.handle(raw)

    def plain(items: list[bytes]) -> None:
        for raw in items:
            [seg.split("|") for seg in raw.decode("utf-8", "replace").split("\r")]

    def apy(items: list[bytes]) -> None:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.parser import parse_message

        for raw in items:
            with contextlib.suppress(Exception):  # the simulator's malformed messages
                parse_message(
                    raw.decode("utf-8", "replace").rstrip("\r"),
                    find_groups=False,
                    validation_level=VALIDATION_LEVEL.TOLERANT,
                )

    r_vigil = _rate(vigil, msgs, args.repeat)
    r_plain = _rate(plain, msgs, args.repeat)
    r_apy = _rate(apy, msgs[: args.hl7apy], 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"messages: {len(msgs)} ({source}), mean {sum(map(len, msgs)) / len(msgs):.0f} bytes")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load:.1f} at the end"
    )
    print(f"{'what':<36}{'msg/s per CPU s':>16}{'msg/s wall':>12}")
    for name, (cpu, wall) in (
        ("vigil parse+map (Pipeline.handle)", r_vigil),
        ("baseline: plain split", r_plain),
        ("baseline: hl7apy parse only", r_apy),
    ):
        print(f"{name:<36}{cpu:>16,.0f}{wall:>12,.0f}")
    print(
        f"vigil is {r_vigil[0] / r_apy[0]:.0f}x hl7apy; a plain split is "
        f"{r_plain[0] / r_vigil[0]:.1f}x faster than vigil"
    )
    if args.by_kind:
        _by_kind(msgs, settings, args.repeat)


def _by_kind(msgs: list[bytes], settings, repeat: int) -> None:
    """Per sender and message type: where the time goes (stream order kept within a kind)."""
    from connectors.errors import MessageRejected
    from connectors.labeller import labeller_for
    from connectors.parse import read_header
    from connectors.pipeline import Pipeline

    kinds: dict[str, list[bytes]] = {}
    for raw in msgs:
        try:
            h = read_header(raw)
            key = f"{h.sending_application} {h.message_type.partition('^')[0]}"
        except MessageRejected:
            key = "rejected at MSH"
        kinds.setdefault(key, []).append(raw)
    print(f"{'kind':<36}{'messages':>10}{'msg/s per CPU s':>16}{'us/msg':>8}")
    for key, items in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        fresh: list[Pipeline] = []
        for _ in range(repeat):
            labeller_for.cache_clear()
            fresh.append(Pipeline(settings))

        def run(batch: list[bytes], pipes: list[Pipeline] = fresh) -> None:
            pipe = pipes.pop()
            for raw in batch:
                with contextlib.suppress(MessageRejected):
                    pipe.handle(raw)

        cpu, _wall = _rate(run, items, repeat)
        print(f"{key:<36}{len(items):>10}{cpu:>16,.0f}{1e6 / cpu:>8.0f}")


if __name__ == "__main__":
    main()
