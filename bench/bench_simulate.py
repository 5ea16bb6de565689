"""Benchmark of `vigil simulate`: a million studies over 12 months on 2 processes.

Prints the figure and two baselines measured in the same run:
- the numpy draws alone (vigil.simulate.network.build: every random number of the run), and
- hl7apy building messages the classic way (object tree, to_er7), extrapolated to the run's
  message count: what a straightforward simulator on hl7apy would need for the same feeds.

    .venv/bin/python bench/bench_simulate.py                 # 1,000,000 studies, 12 months
    .venv/bin/python bench/bench_simulate.py --studies 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def hl7apy_rate(n: int = 200) -> float:
    """Seconds per ORU^R01 (AI result with 5 OBX) built and serialised with hl7apy."""
    from hl7apy.core import Message

    t = time.process_time()
    for i in range(n):
        m = Message("ORU_R01", version="2.5")
        m.msh.msh_3 = "NEUROVUE"
        m.msh.msh_4 = "NGH"
        m.msh.msh_7 = "20251101093357"
        m.msh.msh_10 = f"NVU-{i:09d}"
        m.msh.msh_11 = "P"
        resp = m.add_group("ORU_R01_PATIENT_RESULT")
        pat = resp.add_group("ORU_R01_PATIENT")
        pat.pid.pid_3 = "1000867^^^NGH^MR"
        pat.pid.pid_5 = "Nguyen^Susan"
        order = resp.add_group("ORU_R01_ORDER_OBSERVATION")
        order.obr.obr_3 = "NGH00000002"
        order.obr.obr_4 = "ICH^Intracranial hemorrhage detection^NVU"
        for k in range(5):
            obs = order.add_group("ORU_R01_OBSERVATION")
            obs.obx.obx_1 = str(k + 1)
            obs.obx.obx_2 = "NM"
            obs.obx.obx_3 = "ICH_SCORE^ICH probability^NVU"
            obs.obx.obx_5 = "0.5989"
            obs.obx.obx_11 = "F"
        m.to_er7()
    return (time.process_time() - t) / n


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the month writers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from vigil.simulate import SimulationConfig, simulate
    from vigil.simulate.network import build

    out = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        cfg = SimulationConfig(
            studies=args.studies, months=args.months, seed=args.seed, out=out / "sim",
            workers=args.workers,
        )  # fmt: skip
        t = time.perf_counter()
        build(cfg.validate())
        draws = time.perf_counter() - t

        cpu0 = _cpu()
        t = time.perf_counter()
        res = simulate(cfg)
        total = time.perf_counter() - t
        cpu = _cpu() - cpu0

        per_msg = hl7apy_rate()
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(
            f"vigil simulate: {res.studies:,} studies, {args.months} months, "
            f"{res.messages:,} messages, {res.bytes_written / 1e9:.2f} GB feeds, "
            f"{args.workers} processes: {total:.1f} s "
            f"({res.studies / total:,.0f} studies/s, {res.messages / total:,.0f} messages/s)"
        )
        print(
            f"  CPU time (main + worker processes): {cpu:.1f} s; on {args.workers} idle cores "
            f"that is at least {cpu / args.workers:.1f} s wall"
        )
        print(f"baseline, numpy draws only (network.build): {draws:.1f} s")
        print(
            f"baseline, hl7apy building as many messages: {per_msg * 1e3:.2f} ms CPU each "
            f"-> {per_msg * res.messages / 60:,.0f} min on one core "
            f"(~{per_msg * res.messages / max(1, args.workers) / 60:,.0f} min on {args.workers})"
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
