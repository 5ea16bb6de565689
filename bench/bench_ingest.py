"""Backfill benchmark: `vigil ingest` of simulated feeds into SQLite and PostgreSQL.

Prints messages/s (wall clock) and messages per CPU-second (this process plus its parser
workers: the figure that does not depend on what else runs on the machine), and two baselines
measured in the same run on the same files:
  * split: read the files, split messages, segments and fields (no mapping, no store): the
    floor any HL7 ingest pays;
  * executemany: plain sqlite3 executemany of one 6-column row per message, one commit per
    2,000 rows (the floor of storing anything per message in SQLite).

    .venv/bin/python bench/bench_ingest.py [--studies 20000] [--months 12] [--workers 2]
        [--sim-dir DIR] [--no-postgres | --no-sqlite] [--piece-bytes 16000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

PG_BASE = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def cpu_seconds() -> float:
    return sum(cpu_split())


def cpu_split() -> tuple[float, float]:
    """(this process; its children: the workers that parse, map and store) CPU seconds so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def baseline_split(files: list[Path]) -> tuple[int, float]:
    from connectors.framing import split_messages

    t0 = time.perf_counter()
    n = 0
    for f in files:
        for raw in split_messages(f.read_bytes()):
            for seg in raw.split(b"\r"):
                seg.split(b"|")
            n += 1
    return n, time.perf_counter() - t0


def baseline_executemany(n: int, path: Path) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, sender TEXT, control_id TEXT, "
        "message_type TEXT, outcome TEXT, received_at TEXT, UNIQUE(sender, control_id))"
    )
    t0 = time.perf_counter()
    for start in range(0, n, 2000):
        rows = [
            ("RADIS^NGH", f"RAD{i:09d}", "ORU^R01", "stored", "2026-01-01 00:00:00.000000")
            for i in range(start, min(n, start + 2000))
        ]
        conn.executemany(
            "INSERT INTO t (sender, control_id, message_type, outcome, received_at) "
            "VALUES (?,?,?,?,?)",
            rows,
        )
        conn.commit()
    dt = time.perf_counter() - t0
    conn.close()
    return dt


def run_ingest(
    url: str, files: list[Path], workers: int | None, piece_bytes: int
) -> tuple[object, float, float]:
    from connectors.ingest import ingest_files
    from vigil.settings import load_settings
    from vigil.store.db import dispose_all, open_store

    settings = load_settings(demo=True, database_url=url)
    engine = open_store(settings)
    (w0, k0), t0 = cpu_split(), time.perf_counter()
    summary = ingest_files(files, settings, engine, workers=workers, piece_bytes=piece_bytes)
    wall = time.perf_counter() - t0
    w1, k1 = cpu_split()
    dispose_all()
    n = max(summary.messages, 1)
    print(
        f"  CPU per message: main process {(w1 - w0) / n * 1e6:.0f} us, "
        f"workers (parse, map, store) {(k1 - k0) / n * 1e6:.0f} us"
    )
    return summary, wall, (w1 - w0) + (k1 - k0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--workers", type=int, default=None, help="default: vigil ingest's")
    ap.add_argument(
        "--piece-bytes", type=int, default=16_000_000, help="bytes of HL7 a transaction"
    )
    ap.add_argument("--sim-dir", type=Path, default=None, help="reuse a simulation folder")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (a 1M-study year)")
    args = ap.parse_args()

    from connectors.ingest import default_workers, iter_files
    from vigil.simulate import SimulationConfig, simulate

    with tempfile.TemporaryDirectory() as tmp:
        sim = args.sim_dir or Path(tmp) / "sim"
        if not (sim / "feeds").is_dir():
            t0 = time.perf_counter()
            simulate(SimulationConfig(studies=args.studies, months=args.months, seed=1, out=sim))
            print(f"simulated {args.studies:,} studies in {time.perf_counter() - t0:.1f} s")
        files = iter_files([sim / "feeds"])
        size = sum(f.stat().st_size for f in files)
        n, split_s = baseline_split(files)
        print(
            f"{n:,} messages, {size / 1e6:,.0f} MB, {len(files)} files; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"baseline split only:        {n / split_s:>10,.0f} msg/s")
        import connectors.pipeline  # noqa: F401  (loads the hot path, compiled or not)
        from connectors import compiled_in_use

        print(f"compiled hot path: {', '.join(compiled_in_use()) or 'none (pure Python)'}")
        em = baseline_executemany(n, Path(tmp) / "baseline.sqlite")
        print(f"baseline sqlite executemany: {n / em:>10,.0f} msg/s (1 row per message)")

        targets = [] if args.no_sqlite else [("sqlite", f"sqlite:///{tmp}/bench.sqlite")]
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        if not args.no_postgres:
            targets.append(("postgresql", f"{PG_BASE}?options=-csearch_path%3D{schema}"))
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            for name, url in targets:
                summary, wall, cpu = run_ingest(url, files, args.workers, args.piece_bytes)
                o = summary.outcomes
                print(
                    f"vigil ingest -> {name:<10}: {summary.messages / wall:>10,.0f} msg/s wall, "
                    f"{summary.messages / cpu:,.0f} msg per CPU-second "
                    f"({args.workers or default_workers()} workers); "
                    f"stored {o['stored']:,} ignored {o['ignored']:,} "
                    f"dead letters {o['deadletter']:,} "
                    f"{dict(summary.dead_by_reason.most_common(3))}"
                )
                # The yardstick: 20,000 msg/s where a plain split runs ~68,000 msg/s on
                # one core, i.e. ingest (2 cores) / split (1 core) >= 0.294 on any machine.
                print(
                    f"  ingest / split (same run): {summary.messages / wall / (n / split_s):.3f} "
                    "(target 20,000 / 68,000 = 0.294)"
                )
                summary, wall, cpu = run_ingest(url, files, args.workers, args.piece_bytes)
                print(
                    f"  re-ingest (all duplicates): {summary.messages / wall:,.0f} msg/s wall; "
                    f"duplicates {summary.outcomes['duplicate']:,}"
                )
        finally:
            if not args.no_postgres:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
