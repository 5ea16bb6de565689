"""Helpers for the transport/store tests: simulated messages, a real `vigil listen` process,
and a small MLLP client that resends whatever was not acknowledged."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from sqlalchemy import MetaData, create_engine, select

from vigil.simulate import SimulationConfig, iter_messages

VENV_BIN = Path(sys.executable).parent
VIGIL = str(VENV_BIN / "vigil")
MLLP_SEND = str(VENV_BIN / "mllp_send")
SB, END = b"\x0b", b"\x1c\x0d"


@lru_cache(maxsize=8)
def sim_messages(studies: int, seed: int = 11, months: int = 1) -> tuple[tuple[str, bytes], ...]:
    """The simulator's messages (sender, bytes) in send order."""
    return tuple(iter_messages(SimulationConfig(studies=studies, months=months, seed=seed)))


def well_formed(raw: bytes) -> bool:
    """Not one of the simulator's deliberately malformed messages (truncated MSH, garbage)."""
    return raw.startswith(b"MSH|") and len(msh_fields(raw)) >= 12 and bool(msh_fields(raw)[9])


def clean_messages(studies: int, seed: int = 11) -> list[bytes]:
    return [r for _, r in sim_messages(studies, seed) if well_formed(r)]


def frame(raw: bytes) -> bytes:
    return SB + raw + END


def msh_fields(raw: bytes) -> list[bytes]:
    first = re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[0]
    return first.split(b"|")


def control_id(raw: bytes) -> str:
    return msh_fields(raw)[9].decode()


def sender_key(raw: bytes) -> str:
    f = msh_fields(raw)
    return f"{f[2].decode().split('^')[0]}^{f[3].decode().split('^')[0]}"


def ack_code(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK frame's content."""
    for seg in re.split(rb"\r\n|\r|\n", ack):
        seg = seg.strip(b"\x0b\x1c")
        if seg.startswith(b"MSA"):
            f = seg.split(b"|")
            return f[1].decode(), (f[2].decode() if len(f) > 2 else "")
    raise AssertionError(f"no MSA in {ack!r}")


class Listener:
    """`vigil listen --port 0` as a real subprocess; environment from the test's settings."""

    def __init__(self, env_extra: dict[str, str] | None = None) -> None:
        env = dict(os.environ)
        env.update(env_extra or {})
        self.proc = subprocess.Popen(
            [VIGIL, "listen", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            self.proc.kill()
            raise AssertionError(f"listener did not start: {line!r} {err[-2000:]}")
        self.port = int(m.group(1))

    def terminate(self, timeout: float = 30) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class ResendingSender:
    """One sender's stream over one connection: pipelines up to ``window`` frames, and after a
    broken connection reconnects (to ``port_ref[0]``, which may change) and resends every
    message not yet acknowledged, in order."""

    def __init__(self, messages: Sequence[bytes], port_ref: list[int], window: int = 64) -> None:
        self.messages = list(messages)
        self.port_ref = port_ref
        self.window = window
        self.acked: dict[str, str] = {}  # control id -> MSA-1
        self.reconnects = 0

    async def run(self, deadline: float) -> None:
        ids = [control_id(m) for m in self.messages]
        while len(self.acked) < len(self.messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.acked)}/{len(self.messages)} acked at deadline")
            todo = [i for i, c in enumerate(ids) if c not in self.acked]
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port_ref[0])
            except OSError:
                await asyncio.sleep(0.05)  # listener restarting: poll for it
                continue
            try:
                await self._pump(reader, writer, todo, ids)
            except (OSError, asyncio.IncompleteReadError):
                self.reconnects += 1
            finally:
                writer.close()

    async def _pump(self, reader, writer, todo: list[int], ids: list[str]) -> None:
        sem = asyncio.Semaphore(self.window)

        async def read_acks() -> None:
            for _ in todo:
                data = await reader.readuntil(END)
                code, ctrl = ack_code(data[1:-2])
                self.acked.setdefault(ctrl, code)
                sem.release()

        async def send() -> None:
            for i in todo:
                await sem.acquire()
                writer.write(frame(self.messages[i]))
                await writer.drain()

        tasks = [asyncio.create_task(read_acks()), asyncio.create_task(send())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # a broken connection raises here
            await tasks[0]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def dump_database(url: str) -> dict[str, list[tuple]]:
    """Every row of every table (reflected), for PHI searches and before/after comparisons."""
    engine = create_engine(url)
    md = MetaData()
    md.reflect(engine)
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for name, table in md.tables.items():
            out[name] = [tuple(r) for r in conn.execute(select(table))]
    engine.dispose()
    return out
