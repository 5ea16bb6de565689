"""Benchmark: the committee pack for one month of a 1M-study simulated network.

The case frame is built in memory from the simulator's truth (vigil.simulate's Python API,
through tests/monitor_frames.py as bench_monitor.py does: the frame the loader would build after
a perfect ingest), because filling a 1M-study store through HL7 ingest is far beyond a
benchmark's time on a shared 2-core machine; loading that frame from the store is measured by
the case-frame loader's own benchmark, not here. The period is the network's last month.

Prints, in the same run:
- baseline: the monitors alone, as the pack runs them (reports.monitor_results.model_results);
- the figure: the whole pack after loading (monitors + content + HTML + PDF), target < 60 s.

Run: .venv/bin/python bench/bench_report.py [--studies 1000000] [--months 12] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from reports.gather import PackInputs  # noqa: E402
from reports.window import Window, add_months  # noqa: E402


def simulated_inputs(studies: int, months: int, seed: int = 5) -> PackInputs:
    """PackInputs for the last full month of a simulated network of ``studies`` studies."""
    from monitor_frames import frame_from_truth, simulated_network

    truth, infos, _events = simulated_network(studies, months=months, seed=seed)
    frame = frame_from_truth(truth, infos)
    last = frame["exam_at"].max()
    start = datetime(last.year, last.month, 1, tzinfo=UTC)  # the network's last month
    end = add_months(start, 1)
    window = Window(period=f"{start:%Y-%m}", start=start, end=end)
    models = []
    for i, m in enumerate(infos, start=1):
        d = dataclasses.asdict(m)
        d.update(
            id=i,
            vendor="simulated",
            product=m.name,
            status="active",
            owner="CoE",
            clearance_id="",
            baseline_period="acceptance",
        )
        models.append(d)
    t = start + timedelta(days=3)
    alerts = [
        {
            "id": 1,
            "kind": "performance",
            "severity": "warning",
            "model": infos[0].name,
            "subgroup": "site=EMC",
            "metric": "sensitivity",
            "summary": "sensitivity fell at EMC",
            "status": "acknowledged",
            "first_seen": t,
            "acknowledged_at": t + timedelta(days=1),
            "acknowledged_by": "qo",
            "acknowledge_note": "vendor contacted",
            "resolved_at": None,
            "resolved_by": None,
            "resolve_note": None,
        }
    ]
    keep = frame["exam_at"] < pd.Timestamp(end)
    return PackInputs(
        window=window,
        frame=frame[keep].reset_index(drop=True),
        models=models,
        model_versions=[],
        alerts=alerts,
        checklist=[],
        checklist_events=[],
        rescores=pd.DataFrame(),
        sites={},
        roi_inputs=None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    # import the heavy modules before timing, so neither figure pays for them
    import matplotlib.pyplot  # noqa: F401
    import weasyprint  # noqa: F401

    import monitors.fairness  # noqa: F401
    from reports.build import content_from_inputs, render_files
    from reports.monitor_results import model_results

    t = time.perf_counter()
    inputs = simulated_inputs(args.studies, args.months)
    build_s = time.perf_counter() - t
    in_window = int(
        (
            (inputs.frame["exam_at"] >= inputs.window.start)
            & (inputs.frame["exam_at"] < inputs.window.end)
        ).sum()
    )
    print(
        f"simulated network: {len(inputs.frame):,} rows ({in_window:,} in {inputs.window.period})"
        f", built in {build_s:.1f} s"
    )
    t = time.perf_counter()
    model_results(inputs)
    baseline = time.perf_counter() - t
    print(f"baseline  monitors alone for the pack: {baseline:6.1f} s")
    timings: dict[str, float] = {}
    out = args.out or Path(tempfile.mkdtemp(prefix="vigil-bench-report-"))
    t = time.perf_counter()
    content = content_from_inputs(inputs, now=datetime.now(UTC), timings=timings)
    render_files(content, out, "a4", timings)
    total = time.perf_counter() - t
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(f"figure    whole pack (monitors + content + HTML + PDF): {total:6.1f} s ({parts})")
    print(f"target    < 60 s: {'PASS' if total < 60 else 'FAIL'}; files in {out}")


if __name__ == "__main__":
    main()
