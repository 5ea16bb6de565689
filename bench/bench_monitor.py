"""Benchmark of `vigil monitor`'s core on simulated networks (the simulator's Python API, no HL7).

Prints, per network size:
  * the time and peak memory of the full monitor run (performance, control charts, thresholds,
    data drift, fairness scan, subgroup changes, alert decisions) over the case frame, measured
    in a fresh child process (peak RSS of that process, frame included);
  * the baseline measured in the same run on the same frame: Evidently's DataDriftPreset
    (reference months vs every later month, per model) and the same per-column tests in plain
    scipy (KS / chi-square on raw rows);
  * alerts on the --stable network (false alarms: must be none), and on the network with
    events, the detection delay of each injected event (weekly "as of" runs).

Usage:
  .venv/bin/python bench/bench_monitor.py                   # 10k, 100k, 1M stable + 300k events
  .venv/bin/python bench/bench_monitor.py --sizes 100000 --events 100000 --no-evidently
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("DO_NOT_TRACK", "1")

# expected alert per injected event: (kind, subgroup prefix or exact, metric prefix)
EXPECTED = {
    "population_shift": ("drift", "site={site}", "psi:patient_class"),
    "subgroup_degradation": ("fairness", "{subgroup}", ""),
    "scanner_replacement": ("drift", "site={site}", "psi:scanner_"),
    "model_version_update": ("drift", "", "psi:model_version"),
}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: getrusage keeps the forked
    parent's high-water mark across exec, so a child of a big parent would report the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(frame_path: str, models_path: str) -> None:
    """Run in a fresh process: load the frame, run every monitor, print JSON timings."""
    import pickle

    import pandas as pd

    from vigil.monitoring import evaluate

    t0 = time.perf_counter()
    frame = pd.read_parquet(frame_path)
    infos = pickle.loads(Path(models_path).read_bytes())
    t1 = time.perf_counter()
    results, candidates, errors = evaluate(frame, infos)
    t2 = time.perf_counter()
    comparisons = sum(
        len(s["windows"]) for r in results.values() for s in r.get("drift", {}).get("scopes", [])
    )
    json.dumps(results)
    print(
        json.dumps(
            {
                "rows": len(frame),
                "read_s": t1 - t0,
                "monitor_s": t2 - t1,
                "peak_rss_mb": _peak_rss_mb(),
                "comparisons": comparisons,
                "alerts": [c.to_dict() for c in candidates],
                "errors": errors,
            },
            default=str,
        )
    )


def run_child(frame, infos, tmp: Path) -> dict:
    import pickle

    fp, mp = tmp / "frame.parquet", tmp / "models.pkl"
    frame.to_parquet(fp)
    mp.write_bytes(pickle.dumps(infos))
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(fp), str(mp)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def scipy_baseline(frame, infos) -> float:
    """The same per-column tests on raw rows with scipy (KS numeric, chi-square categorical),
    reference months vs each later month, per model: what a straightforward version costs."""
    import numpy as np
    from scipy import stats

    from monitors.drift import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, month_windows
    from vigil.monitoring import reference_windows

    t0 = time.perf_counter()
    win = month_windows(frame["exam_at"])
    for info in infos:
        m = (frame["model"] == info.name).to_numpy()
        sub, w = frame.loc[m], win[m]
        months = sorted(w.dropna().unique())
        ref = reference_windows(months, info.go_live_date, 2)
        rmask = w.isin(ref).to_numpy()
        for month in months:
            if month in ref:
                continue
            cmask = (w == month).to_numpy()
            for c in NUMERIC_COLUMNS:
                a = sub[c].to_numpy(dtype="float64", na_value=np.nan)
                stats.ks_2samp(a[rmask & ~np.isnan(a)], a[cmask & ~np.isnan(a)])
            for c in CATEGORICAL_COLUMNS:
                s = sub[c].astype("string").fillna("?")
                r = s[rmask].value_counts()
                cur = s[cmask].value_counts()
                t = np.vstack(
                    [
                        r.reindex(r.index.union(cur.index), fill_value=0),
                        cur.reindex(r.index.union(cur.index), fill_value=0),
                    ]
                )
                t = t[:, t.sum(0) > 0]
                if t.shape[1] > 1:
                    stats.chi2_contingency(t)
    return time.perf_counter() - t0


def evidently_baseline(frame, infos) -> tuple[float, int]:
    """Evidently 0.7's DataDriftPreset, reference months vs the latest month, per model.

    Returns (seconds, comparisons). Our monitor makes months x (1 + sites) comparisons per
    model; Evidently is timed on one per model (the full set takes minutes at 1M rows).
    """
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from monitors.drift import drift_columns, month_windows
    from vigil.monitoring import reference_windows

    num, cat = drift_columns(frame)
    win = month_windows(frame["exam_at"])
    elapsed, comparisons = 0.0, 0
    for info in infos:
        m = (frame["model"] == info.name).to_numpy()
        sub = frame.loc[m, [*num, *cat]].copy()
        for c in cat:
            sub[c] = sub[c].astype("string").fillna("<missing>").astype(object)
        for c in num:
            sub[c] = pd.to_numeric(sub[c], errors="coerce").astype("float64")
        w = win[m]
        months = sorted(w.dropna().unique())
        ref = reference_windows(months, info.go_live_date, 2)
        dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
        t0 = time.perf_counter()
        ref_ds = Dataset.from_pandas(sub[w.isin(ref).to_numpy()], data_definition=dd)
        cur_ds = Dataset.from_pandas(sub[(w == months[-1]).to_numpy()], data_definition=dd)
        Report([DataDriftPreset()]).run(cur_ds, ref_ds)
        elapsed += time.perf_counter() - t0
        comparisons += 1
    return elapsed, comparisons


def loader_bench(n: int, tmp: Path, url: str | None = None) -> str:
    """Time load_case_frame over a SQLite store of ``n`` studies, against the ORM way (one
    Study + AIResult + FinalRead object per row, then a DataFrame) on the same store."""
    from datetime import date

    import pandas as pd
    from monitor_frames import seed_store_from_frame, synthetic_frame
    from sqlmodel import Session, select

    from vigil.caseframe import load_case_frame
    from vigil.monitoring import ModelInfo
    from vigil.store.db import make_engine, upgrade
    from vigil.store.tables import AIResult, FinalRead, Study

    schema = None
    if url:  # PostgreSQL: a scratch schema, dropped afterwards
        import uuid

        from sqlalchemy import create_engine, text

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(f"{url}?options=-csearch_path%3D{schema}")
    else:
        engine = make_engine(f"sqlite:///{tmp / f'loader-{n}.sqlite'}")
    upgrade(engine)
    t0 = time.perf_counter()
    frame = synthetic_frame(n, seed=1)
    seed_store_from_frame(
        engine,
        frame,
        [ModelInfo(name="neurovue-ich", finding="ich", go_live_date=date(2026, 1, 1))],
    )
    seed_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_case_frame(engine)
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    with Session(engine) as s:
        rows = s.exec(
            select(Study, AIResult, FinalRead)
            .join(AIResult, AIResult.study_id == Study.id)
            .join(FinalRead, FinalRead.study_id == Study.id, isouter=True)
        ).all()
        orm = pd.DataFrame(
            [
                {
                    "study_id": st.id,
                    "site": st.site_code,
                    "score": r.score,
                    "exam_at": st.exam_started_at,
                    "label": f.label if f else None,
                }
                for st, r, f in rows
            ]
        )
    orm_s = time.perf_counter() - t0
    assert len(loaded) == len(orm) == n
    engine.dispose()
    if schema:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return (
        f"loader {n:,} studies on {engine.dialect.name}: load_case_frame {ours:.2f} s wall, "
        f"{ours_cpu:.2f} s CPU in this process (all 29 columns) | "
        f"baseline ORM objects -> DataFrame {orm_s:.2f} s (5 columns)  (seeding {seed_s:.0f} s)"
    )


def matches(alert: dict, event: dict, model: str) -> bool:
    kind, subgroup, metric = EXPECTED[event["kind"]]
    subgroup = subgroup.format(site=event.get("site"), subgroup=event.get("subgroup"))
    return (
        alert["kind"] == kind
        and alert["model"] == model
        and alert["subgroup"] == subgroup
        and alert["metric"].startswith(metric)
    )


def detection_delays(frame, infos, events, *, weeks: int = 12) -> list[dict]:
    """For each event and affected model: weeks from the event's start to the first weekly
    "as of" run (data up to that day) that raises the expected alert."""
    import pandas as pd

    from vigil.monitoring import evaluate

    starts = sorted(pd.Timestamp(e["start_utc"]) for e in events)
    pending = {(e["id"], m): e for e in events for m in e["models"][:1]}
    found: dict[tuple[str, str], dict] = {}
    cutoffs = sorted({s + pd.Timedelta(weeks=k) for s in starts for k in range(1, weeks + 1)})
    end = frame["exam_at"].max()
    for cut in cutoffs:
        if not pending or cut > end + pd.Timedelta(days=1):
            break
        todo = [k for k in pending if pd.Timestamp(pending[k]["start_utc"]) < cut]
        if not todo:
            continue
        sub = frame[frame["exam_at"] < cut]
        models = [i for i in infos if any(k[1] == i.name for k in todo)]
        _, candidates, _ = evaluate(sub, models)
        alerts = [c.to_dict() for c in candidates]
        for key in todo:
            ev = pending[key]
            hit = next((a for a in alerts if matches(a, ev, key[1])), None)
            if hit is not None:
                delay = (cut - pd.Timestamp(ev["start_utc"])) / pd.Timedelta(weeks=1)
                found[key] = {
                    "event": ev["id"],
                    "kind": ev["kind"],
                    "model": key[1],
                    "start": ev["start"],
                    "detected_as_of": str(cut.date()),
                    "delay_weeks": round(delay, 1),
                    "alert": hit["summary"],
                }
                del pending[key]
    for key, ev in pending.items():
        found[key] = {
            "event": ev["id"],
            "kind": ev["kind"],
            "model": key[1],
            "start": ev["start"],
            "detected_as_of": None,
            "delay_weeks": None,
            "alert": f"not found within {weeks} weeks",
        }
    return sorted(found.values(), key=lambda r: r["event"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--events", type=int, default=300_000, help="size of the network with events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-evidently", action="store_true", help="skip the Evidently baseline")
    ap.add_argument("--loader", type=int, default=0, help="also time the loader on N studies")
    ap.add_argument("--loader-url", default=None, help="PostgreSQL URL for --loader (else SQLite)")
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return

    from monitor_frames import frame_from_truth, simulated_network

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.loader:
            print(loader_bench(args.loader, tmp, args.loader_url), flush=True)
        for n in args.sizes:
            t0 = time.perf_counter()
            truth, infos, _ = simulated_network(n, seed=args.seed, stable=True)
            frame = frame_from_truth(truth, infos)
            del truth
            sim_s = time.perf_counter() - t0
            r = run_child(frame, infos, tmp)
            line = (
                f"stable {n:>9,} studies ({r['rows']:,} case rows): "
                f"monitor {r['monitor_s']:.2f} s, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB, alerts {len(r['alerts'])}"
            )
            sp = scipy_baseline(frame, infos)
            line += f" | baseline scipy raw tests {sp:.2f} s"
            if not args.no_evidently:
                ev, k = evidently_baseline(frame, infos)
                line += (
                    f", Evidently DataDriftPreset {ev:.2f} s for {k} comparisons "
                    f"(reference vs latest month; ours makes {r['comparisons']})"
                )
            print(line + f"  (simulate {sim_s:.1f} s)", flush=True)
            for a in r["alerts"]:
                print("   FALSE ALARM:", a["summary"])
            for e in r["errors"]:
                print("   ERROR:", e)
        if args.events:
            truth, infos, events = simulated_network(args.events, seed=args.seed)
            frame = frame_from_truth(truth, infos)
            del truth
            r = run_child(frame, infos, tmp)
            print(
                f"events {args.events:,} studies: monitor {r['monitor_s']:.2f} s, "
                f"{len(r['alerts'])} alerts at the end of the period"
            )
            for row in detection_delays(frame, infos, events):
                print(
                    f"   {row['event']} {row['kind']:<22} {row['model']:<17} start "
                    f"{row['start']} -> {row['delay_weeks']} weeks: {row['alert'][:110]}"
                )


if __name__ == "__main__":
    main()
