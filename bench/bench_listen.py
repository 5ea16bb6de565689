"""Live ingest benchmark: simulated feeds over 8 concurrent MLLP connections to `vigil listen`.

Prints messages/s from the first frame sent to the last ACK received, checks that every ACK
came after its commit (the ledger holds exactly the acknowledged messages), and, as the baseline
measured in the same run, the parse+map rate of the same messages in one process with no network
and no store (the ceiling the listener's single event loop could reach).

    .venv/bin/python bench/bench_listen.py [--studies 10000] [--connections 8] [--window 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

VENV_BIN = Path(sys.executable).parent
END = b"\x1c\x0d"


def control_id(raw: bytes) -> str:
    return re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[0].split(b"|")[9].decode()


async def stream(port: int, msgs: list[bytes], window: int, acks: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sem = asyncio.Semaphore(window)

    async def read() -> None:
        for _ in msgs:
            data = await reader.readuntil(END)
            for seg in data.split(b"\r"):
                if seg.startswith(b"MSA"):
                    acks.append(seg.split(b"|")[2].strip(b"\x1c").decode())
            sem.release()

    task = asyncio.create_task(read())
    for raw in msgs:
        await sem.acquire()
        writer.write(b"\x0b" + raw + END)
        await writer.drain()
    await task
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()

    from connectors.ingest import process_raw
    from connectors.pipeline import Pipeline
    from vigil.settings import load_settings
    from vigil.simulate import SimulationConfig, iter_messages
    from vigil.store.tables import ReceivedMessage

    sim = list(iter_messages(SimulationConfig(studies=args.studies, months=1, seed=5)))
    msgs = [
        r
        for _, r in sim
        if r.startswith(b"MSH|")
        and len(re.split(rb"\r\n|\r|\n", r, maxsplit=1)[0].split(b"|")) > 11
    ]
    streams = [msgs[i :: args.connections] for i in range(args.connections)]

    # Baseline: parse + map the same messages in this process, no network, no store.
    pipe = Pipeline(load_settings(demo=True))
    t0 = time.perf_counter()
    for raw in msgs:
        process_raw(pipe, raw)
    base = len(msgs) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/listen.sqlite"
        env = {**os.environ, "VIGIL_DATABASE_URL": url, "VIGIL_DEMO": "1", "VIGIL_DATA_DIR": tmp}
        proc = subprocess.Popen(
            [str(VENV_BIN / "vigil"), "listen", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        line = proc.stdout.readline().decode()
        port = int(line.rsplit(":", 1)[1])
        acks: list[str] = []

        async def run() -> None:
            await asyncio.gather(*(stream(port, s, args.window, acks) for s in streams))

        t0 = time.perf_counter()
        asyncio.run(run())
        dt = time.perf_counter() - t0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        eng = create_engine(url)
        with eng.connect() as conn:
            ledger = conn.execute(select(func.count()).select_from(ReceivedMessage)).scalar_one()
        eng.dispose()
    backend = url.split(":", 1)[0]
    print(f"messages: {len(msgs):,} over {args.connections} connections (window {args.window})")
    print(
        f"listen ({backend}): {len(msgs) / dt:,.0f} msg/s, ACK after commit; "
        f"ledger rows {ledger:,} == ACKs {len(acks):,}: {ledger == len(acks)}"
    )
    print(f"baseline parse+map only, one process, no network/store: {base:,.0f} msg/s")
    print(err.decode().strip().splitlines()[-1])


if __name__ == "__main__":
    main()
