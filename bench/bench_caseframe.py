"""Benchmark of the case-frame loader and of the FULL `vigil monitor` (load from the store +
every monitor + saving the run and alerts) on a big store, SQLite and PostgreSQL.

The store is built from the simulator's truth (tests/monitor_frames.py) with bulk inserts
(sqlite3 executemany / PostgreSQL COPY): ingesting the ~4M HL7 messages of a 1M-study network
would take far longer. Each case row becomes a study with one AI result and (unless pending) one
current final read; studies carry Study.extra DICOM inputs (kvp, slice thickness) as ingest does.

Prints, per backend:
  * load_case_frame: wall and CPU seconds, case rows;
  * baseline in the same run: pandas.read_sql of the portable query (the same SQL the loader's
    portable path runs, one column per item) and its conversion to the frame contract;
  * full `vigil monitor` (vigil.monitoring.run_monitors, store=True) in a fresh child process:
    wall seconds, its load/monitor split and peak RSS.

Usage:
  .venv/bin/python bench/bench_caseframe.py                      # 1M studies, SQLite + PostgreSQL
  .venv/bin/python bench/bench_caseframe.py --studies 200000 --backends sqlite --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("DO_NOT_TRACK", "1")
PG_URL = os.environ.get("VIGIL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ts_text(s):
    """tz-aware series -> SQLAlchemy's SQLite text form ('%Y-%m-%d %H:%M:%S.%f'), None for NaT."""
    import numpy as np

    out = (
        s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%f").astype(object).to_numpy().copy()
    )
    out[s.isna().to_numpy()] = None
    return np.asarray(out, dtype=object)


def _columns(frame):
    """Column lists (Python objects, None for missing) of the study / airesult / finalread rows."""
    import numpy as np
    import pandas as pd

    n = len(frame)

    def obj(s):
        a = s.astype(object).to_numpy().copy()
        a[pd.isna(a)] = None
        return a

    rng = np.random.default_rng(3)
    kvp = rng.choice([100, 120, 140], n)
    extra = np.array(
        [f'{{"kvp": {k}, "slice_thickness_mm": 1.25}}' for k in kvp.tolist()], dtype=object
    )
    sid = frame["study_id"].to_numpy().tolist()
    age = frame["age"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    study = {
        "id": sid,
        "site_code": obj(frame["site"].astype("string")),
        "accession": obj(frame["accession"]),
        "modality": obj(frame["modality"]),
        "procedure_code": obj(frame["procedure"]),
        "scanner_manufacturer": obj(frame["scanner_manufacturer"]),
        "scanner_model": obj(frame["scanner_model"]),
        "patient_class": obj(frame["patient_class"]),
        "age_at_study": [None if a != a else int(a) for a in age.tolist()],
        "sex": obj(frame["sex"]),
        "race": obj(frame["race"]),
        "ethnicity": obj(frame["ethnicity"]),
        "ordered_at": _ts_text(frame["ordered_at"]),
        "exam_started_at": _ts_text(frame["exam_at"]),
        "prelim_report_at": _ts_text(frame["prelim_report_at"]),
        "final_report_at": _ts_text(frame["final_report_at"]),
        "extra": extra,
    }
    result = {
        "id": sid,
        "study_id": sid,
        "model_id": obj(frame["model"]),  # replaced by ids by the caller
        "finding": obj(frame["finding"]),
        "model_version": obj(frame["model_version"]),
        "score": frame["score"].astype(object).where(frame["score"].notna(), None).to_numpy(),
        "call": [None if v is pd.NA else int(v) for v in frame["ai_call"].tolist()],
        "received_at": _ts_text(frame["ai_received_at"]),
        "source_message_id": [""] * n,
    }
    keep = (frame["label_state"] != "pending").to_numpy()
    read = {
        "study_id": np.asarray(sid, dtype=object)[keep],
        "finding": obj(frame["finding"])[keep],
        "label": obj(frame["label_state"].astype("string"))[keep],
        "label_source": obj(frame["label_source"].astype("string"))[keep],
        "report_status": ["F"] * int(keep.sum()),
        "reported_at": _ts_text(frame["final_report_at"])[keep],
        "is_current": [1] * int(keep.sum()),
        "evidence": [""] * int(keep.sum()),
        "source_message_id": [""] * int(keep.sum()),
    }
    return study, result, read


def build_store(engine, frame, infos) -> None:
    """Bulk-write a case frame into a migrated, empty store (SQLite or PostgreSQL)."""
    from monitor_frames import seed_sites_and_models

    with engine.begin() as conn:
        ids = seed_sites_and_models(conn, frame, infos)
    study, result, read = _columns(frame)
    result["model_id"] = [ids[m] for m in result["model_id"]]
    pg = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, cols in (("study", study), ("airesult", result), ("finalread", read)):
            names = list(cols)
            rows = list(zip(*(cols[c] for c in names), strict=True))
            if pg:
                if "is_current" in cols:
                    idx = names.index("is_current")
                    rows = [(*r[:idx], True, *r[idx + 1 :]) for r in rows]
                if "call" in cols:
                    idx = names.index("call")
                    rows = [(*r[:idx], None if r[idx] is None else bool(r[idx]), *r[idx + 1 :])
                            for r in rows]  # fmt: skip
                tcols = {"ordered_at", "exam_started_at", "prelim_report_at", "final_report_at",
                         "received_at", "reported_at"}  # fmt: skip
                rows = [
                    tuple(v + "+00" if n in tcols and v is not None else v
                          for n, v in zip(names, r, strict=True))
                    for r in rows
                ]  # fmt: skip
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            else:
                marks = ", ".join("?" * len(names))
                cur.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
        if pg:
            for table in ("study", "aimodel", "airesult", "finalread"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
            cur.execute("ANALYZE")
        else:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def baseline_read_sql(engine) -> tuple[float, int]:
    """pandas.read_sql of the loader's portable query, then the same frame conversion."""
    import pandas as pd
    from sqlalchemy import text

    from vigil import caseframe

    t0 = time.perf_counter()
    with engine.connect() as conn:
        dicom = caseframe._dicom_keys(conn, engine.dialect.name)
        raw = pd.read_sql(text(caseframe._query(engine.dialect.name, dicom, [])), conn)
    frame = caseframe.frame_from_rows(raw)
    return time.perf_counter() - t0, len(frame)


def _previous_path() -> None:
    """VIGIL_BENCH_PREVIOUS=1: the loader's paths before ADBC (rows as delimited text + pyarrow
    CSV on SQLite, COPY CSV on PostgreSQL), for the before/after comparison."""
    if os.environ.get("VIGIL_BENCH_PREVIOUS") == "1":
        from vigil import caseframe

        caseframe.USE_ADBC = False


def _child_monitor(url: str) -> None:
    """Fresh process: the full `vigil monitor` (store=True) over the store at ``url``."""
    _previous_path()
    from vigil.monitoring import run_monitors
    from vigil.store.db import make_engine

    engine = make_engine(url)
    t0 = time.perf_counter()
    res = run_monitors(engine, store=True)
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "wall_s": wall,
                "timings": res["run"]["timings_s"],
                "rows": res["run"]["n_rows"],
                "peak_rss_mb": _peak_rss_mb(),
                "errors": len(res["errors"]),
            }
        )
    )


def _child_load(url: str) -> None:
    """Fresh process: load_case_frame only, with its peak RSS."""
    _previous_path()
    import resource

    from vigil.caseframe import load_case_frame
    from vigil.store.db import make_engine

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    engine = make_engine(url)
    t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu()
    frame = load_case_frame(engine)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0 + children_cpu() - k0  # + the SQLite reader processes
    reader_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = {"wall_s": wall, "cpu_s": cpu, "rows": len(frame), "peak_rss_mb": _peak_rss_mb()}
    print(json.dumps({**out, "reader_rss_mb": reader_mb}))


def _run_child(flag: str, url: str, *, previous: bool = False) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    env["VIGIL_BENCH_PREVIOUS"] = "1" if previous else "0"
    out = subprocess.run(
        [sys.executable, __file__, flag, url], capture_output=True, text=True, env=env
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child-monitor", help=argparse.SUPPRESS)
    ap.add_argument("--child-load", help=argparse.SUPPRESS)
    ap.add_argument("--studies", type=int, default=1_000_000)
    ap.add_argument("--backends", nargs="*", default=["sqlite", "postgresql"])
    ap.add_argument("--no-baseline", action="store_true", help="skip pandas.read_sql")
    ap.add_argument("--keep", default=None, help="SQLite file to build once and reuse")
    args = ap.parse_args()
    if args.child_monitor:
        _child_monitor(args.child_monitor)
        return
    if args.child_load:
        _child_load(args.child_load)
        return

    from monitor_frames import frame_from_truth, simulated_network
    from sqlalchemy import create_engine, text

    from vigil.store.db import make_engine, upgrade

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} at start")
    t0 = time.perf_counter()
    truth, infos, _ = simulated_network(args.studies, seed=1, stable=True)
    frame = frame_from_truth(truth, infos)
    del truth
    print(f"simulated {args.studies:,} studies -> {len(frame):,} case rows in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        for backend in args.backends:
            admin = schema = None
            if backend == "sqlite":
                path = Path(args.keep) if args.keep else Path(d) / "bench.sqlite"
                url = f"sqlite:///{path}"
                fresh = not path.exists()
            else:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(text(f'CREATE SCHEMA "{schema}"'))
                url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                fresh = True
            try:
                engine = make_engine(url)
                if fresh:
                    upgrade(engine)
                    t0 = time.perf_counter()
                    build_store(engine, frame, infos)
                    print(f"{backend}: store built in {time.perf_counter() - t0:.1f} s", flush=True)
                for previous in (False, True):
                    r = _run_child("--child-load", url, previous=previous)
                    what = "previous path (text/CSV + pyarrow)" if previous else "ADBC"
                    print(f"{backend} load_case_frame [{what}] {args.studies:,} studies "
                          f"({r['rows']:,} rows): {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s "
                          f"CPU incl. readers, peak RSS {r['peak_rss_mb']:.0f} MB "
                        f"(reader process {r['reader_rss_mb']:.0f} MB)", flush=True)  # fmt: skip
                if not args.no_baseline:
                    b, rows = baseline_read_sql(engine)
                    print(f"{backend}   baseline pandas.read_sql(portable query) + frame: "
                          f"{b:.2f} s ({rows:,} rows)", flush=True)  # fmt: skip
                for previous in (False, True):
                    m = _run_child("--child-monitor", url, previous=previous)
                    what = "previous loader" if previous else "ADBC"
                    print(f"{backend} full vigil monitor [{what}] (run_monitors, store=True): "
                          f"{m['wall_s']:.2f} s wall (load {m['timings']['load']:.2f} s, "
                          f"monitors {m['timings']['monitors']:.2f} s), {m['rows']:,} rows, "
                          f"peak RSS {m['peak_rss_mb']:.0f} MB, errors {m['errors']}",
                          flush=True)  # fmt: skip
                engine.dispose()
            finally:
                if admin is not None:
                    with admin.connect() as c:
                        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
