"""Benchmark: `vigil report` for one month of a 1M-study network, loading from the store included.

Target: "a pack for one month of a 1M-study network renders in under 60 s", measured as a user
sees it: the `vigil report --period P --out DIR` command run as a process (imports, loading the
case frame and governance records from the store, monitors, content, HTML, PDF).

The store is a SQLite file filled by dashboard.synthetic's bulk inserts (as bench_dashboard.py
builds its store; HL7 ingest of 1M studies is far beyond a benchmark's time on a shared 2-core
machine). An existing file is reused when its tables and columns match the current schema.
The period is the store's last full month.

Prints, in the same run:
- baseline: the pack after loading (monitors + content + HTML + PDF on the gathered inputs,
  in-process), i.e. what this benchmark used to measure before loading was included;
- the figure: the whole `vigil report` process wall time, with its parts, target < 60 s;
- which case-frame loader was measured (sha256 of vigil/caseframe.py and whether git sees it
  modified), since that module is being optimised separately.

Run: .venv/bin/python bench/bench_report.py [--studies 1000000] [--db /tmp/b1m.sqlite]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class SchemaMismatch(RuntimeError):
    pass


def check_schema(db: Path) -> None:
    """Every table and column of the current metadata exists in the file (else rebuild it)."""
    from sqlalchemy import create_engine, inspect
    from sqlmodel import SQLModel

    import vigil.store.tables  # noqa: F401  (registers the tables)

    eng = create_engine(f"sqlite:///{db}")
    try:
        insp = inspect(eng)
        have = set(insp.get_table_names())
        problems = []
        for name, table in SQLModel.metadata.tables.items():
            if name not in have:
                problems.append(f"table {name} missing")
                continue
            cols = {c["name"] for c in insp.get_columns(name)}
            missing = [c.name for c in table.columns if c.name not in cols]
            if missing:
                problems.append(f"{name} lacks {', '.join(missing)}")
    finally:
        eng.dispose()
    if problems:
        raise SchemaMismatch(f"{db} does not match the schema: " + "; ".join(problems))


def ensure_store(db: Path, studies: int):
    """Open (building if empty) the store; returns the engine."""
    from sqlalchemy import func
    from sqlmodel import select

    from dashboard.synthetic import populate
    from vigil.store.db import open_store
    from vigil.store.tables import Study

    if db.exists() and db.stat().st_size > 0:
        check_schema(db)
    engine = open_store()
    with engine.connect() as c:
        n = c.execute(select(func.count()).select_from(Study)).scalar_one()
    if n == 0:
        t = time.perf_counter()
        populate(engine, studies)
        print(f"built store {db}: {studies:,} studies in {time.perf_counter() - t:.1f} s")
    else:
        print(f"reusing store {db}: {n:,} studies")
    return engine


def last_full_month(engine) -> str:
    from sqlalchemy import func
    from sqlmodel import select

    from reports.window import add_months
    from vigil.store.tables import Study

    with engine.connect() as c:
        last = c.execute(select(func.max(Study.exam_started_at))).scalar_one()
    start = datetime(last.year, last.month, 1, tzinfo=UTC)
    return f"{add_months(start, -1):%Y-%m}"


def loader_version() -> str:
    path = REPO / "vigil" / "caseframe.py"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    st = subprocess.run(
        ["git", "status", "--porcelain", "--", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    head = subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    state = "modified in the working tree" if st else "as committed"
    return f"vigil/caseframe.py sha256 {digest} ({state}; last commit {head or '?'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/b1m.sqlite"))
    ap.add_argument("--period", default=None, help="YYYY-MM (default: the last full month)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--build-only", action="store_true", help="build/check the store and stop")
    args = ap.parse_args()
    os.environ["VIGIL_DATABASE_URL"] = f"sqlite:///{args.db}"
    os.environ.setdefault("VIGIL_DATA_DIR", tempfile.mkdtemp(prefix="vigil-bench-report-"))

    engine = ensure_store(args.db, args.studies)
    period = args.period or last_full_month(engine)
    print(f"loader: {loader_version()}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if args.build_only:
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="vigil-bench-report-"))

    # the figure: the command as a user runs it, in a fresh process
    cmd = [
        str(Path(sys.executable).with_name("vigil")),
        "report",
        "--period",
        period,
        "--out",
        str(out / "cli"),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    figure = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"vigil report failed:\n{proc.stdout}\n{proc.stderr}")

    # the parts and the baseline (pack after loading), in this process
    import matplotlib.pyplot  # noqa: F401
    import weasyprint  # noqa: F401

    from reports.build import content_from_inputs, render_files
    from reports.gather import gather
    from reports.window import parse_period

    t = time.perf_counter()
    inputs = gather(engine, parse_period(period))
    load_s = time.perf_counter() - t
    timings: dict[str, float] = {}
    t = time.perf_counter()
    content = content_from_inputs(inputs, now=datetime.now(UTC), timings=timings)
    render_files(content, out / "inproc", "a4", timings)
    baseline = time.perf_counter() - t
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(
        f"period {period}: {len(inputs.frame):,} case-frame rows loaded "
        f"({content.n_cases:,} in the window)"
    )
    print(f"baseline  pack after loading (in-process): {baseline:6.1f} s ({parts})")
    print(f"          loading from the store (gather, in-process): {load_s:6.1f} s")
    print(f"figure    whole `vigil report` process: {figure:6.1f} s")
    print(f"target    < 60 s: {'PASS' if figure < 60 else 'FAIL'}; files in {out}")
    print(f"machine: load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
