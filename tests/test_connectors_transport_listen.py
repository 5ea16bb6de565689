"""`vigil listen` as a real process, driven by python-hl7's `mllp_send` and raw sockets."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from connectors_transport_support import (
    MLLP_SEND,
    VIGIL,
    Listener,
    ack_code,
    clean_messages,
    control_id,
    frame,
    sender_key,
    sim_messages,
)
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select

from vigil.settings import Settings, get_settings
from vigil.store.tables import DeadLetter, ReceivedMessage

END = b"\x1c\x0d"


@pytest.fixture
def sqlite_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for a listener test that is about the transport, not the backend (SQLite only;
    the concurrency test runs on both backends)."""
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    monkeypatch.setenv("VIGIL_DEMO", "1")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _ledger_keys(url: str) -> set[tuple[str, str]]:
    eng = create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(select(ReceivedMessage.sender, ReceivedMessage.control_id)).all()
    eng.dispose()
    return {(s, c) for s, c in rows}


def _write_mllp_file(path: Path, raws: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(r) for r in raws))
    return path


def _acks_from_stdout(out: str) -> list[tuple[str, str]]:
    """mllp_send prints each ACK's segments (CR-separated) on one line."""
    return [ack_code(line.encode()) for line in out.split("\n") if "MSA|" in line]


def _bad_score(raw: bytes, suffix: str) -> bytes:
    """A NEUROVUE result whose score is not a number, under a fresh control id."""
    raw = re.sub(rb"(ICH_SCORE\^ICH probability\^NVU\|\|)[^|]*", rb"\1not-a-number", raw)
    ctrl = control_id(raw).encode()
    return raw.replace(ctrl, ctrl + suffix.encode(), 1)


def _recv_frame(sock: socket.socket, buf: bytearray) -> bytes | None:
    while END not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    i = buf.index(END)
    out = bytes(buf[1:i])
    del buf[: i + 2]
    return out


def test_eight_concurrent_mllp_send_clients_all_stored_once(settings, tmp_path):
    msgs = clean_messages(160)
    parts = [msgs[i::8] for i in range(8)]
    with Listener() as lis:
        files = [_write_mllp_file(tmp_path / f"c{i}.hl7", p) for i, p in enumerate(parts)]
        procs = [
            subprocess.Popen(
                [MLLP_SEND, "--file", str(f), "--port", str(lis.port), "127.0.0.1"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for f in files
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
        acks = [a for out, _ in outs for a in _acks_from_stdout(out.decode())]
        # every message answered, with its own control id
        assert sorted(c for _, c in acks) == sorted(control_id(m) for m in msgs)
        # resend everything: acknowledged again, stored once
        again = subprocess.run(
            [MLLP_SEND, "--file", str(files[0]), "--port", str(lis.port), "127.0.0.1"],
            capture_output=True,
            timeout=120,
        )
        acks2 = _acks_from_stdout(again.stdout.decode())
        assert len(acks2) == len(parts[0])
        rc, err = lis.terminate()
        assert rc == 0, err
    ledger = _ledger_keys(settings.effective_database_url)
    assert ledger == {(sender_key(m), control_id(m)) for m in msgs}
    by_ctrl = dict((c, code) for code, c in acks)
    assert {by_ctrl[c] for c in by_ctrl} <= {"AA", "AE", "AR"}
    assert sum(code == "AA" for code, _ in acks) > 0.9 * len(msgs)
    assert [c for _, c in acks2] == [control_id(m) for m in parts[0]]
    assert [code for code, _ in acks2] == [by_ctrl[control_id(m)] for m in parts[0]]


def test_every_ack_follows_a_visible_commit(sqlite_settings):
    """On each ACK the test reads the store through its own connection: the row is there."""
    msgs = clean_messages(60)[:120]
    url = sqlite_settings.effective_database_url
    eng = create_engine(url)
    seen_missing: list[str] = []

    async def client(port: int, part: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for raw in part:
            writer.write(frame(raw))
            await writer.drain()
            ack = await reader.readuntil(END)
            _, ctrl = ack_code(ack[1:-2])
            with eng.connect() as conn:
                n = conn.execute(
                    select(func.count())
                    .select_from(ReceivedMessage)
                    .where(
                        ReceivedMessage.sender == sender_key(raw),
                        ReceivedMessage.control_id == ctrl,
                    )
                ).scalar_one()
            if n != 1:
                seen_missing.append(ctrl)
        writer.close()

    async def main(port: int) -> None:
        await asyncio.gather(*(client(port, msgs[i::4]) for i in range(4)))

    with Listener() as lis:
        asyncio.run(main(lis.port))
        assert lis.terminate()[0] == 0
    eng.dispose()
    assert seen_missing == []


def test_bad_message_gets_nak_with_err_and_encrypted_dead_letter(sqlite_settings, tmp_path):
    nv = next(r for s, r in sim_messages(60) if s == "NEUROVUE")
    bad = _bad_score(nv, "-BAD")
    good = next(r for s, r in sim_messages(60) if s == "RADIS")
    f = _write_mllp_file(tmp_path / "bad.hl7", [bad, good])
    with Listener() as lis:
        out = subprocess.run(
            [MLLP_SEND, "--file", str(f), "--port", str(lis.port), "127.0.0.1"],
            capture_output=True,
            timeout=60,
        ).stdout.decode()
        assert lis.terminate()[0] == 0
    lines = [line for line in out.split("\n") if "MSA|" in line]
    assert ack_code(lines[0].encode()) == ("AE", control_id(bad))
    assert "ERR|" in lines[0] and "bad_score" in lines[0]
    assert ack_code(lines[1].encode())[0] == "AA"
    eng = create_engine(sqlite_settings.effective_database_url)
    with eng.connect() as conn:
        (dl,) = conn.execute(select(DeadLetter)).all()
    eng.dispose()
    assert dl.reason_code == "bad_score" and dl.control_id == control_id(bad)
    assert bad not in dl.raw_encrypted and b"not-a-number" not in dl.raw_encrypted
    key = sqlite_settings.deadletter_key.get_secret_value().encode()
    # byte for byte what went over the wire (mllp_send strips the last CR)
    assert Fernet(key).decrypt(dl.raw_encrypted) == bad.rstrip(b"\r")


def test_too_large_and_garbage_frames_do_not_hurt_other_connections(sqlite_settings, monkeypatch):
    monkeypatch.setenv("VIGIL_MAX_MESSAGE_BYTES", "4096")
    msgs = [r for s, r in sim_messages(60) if s == "RADIS" and len(r) < 3000][:20]
    with Listener() as lis:
        good = socket.create_connection(("127.0.0.1", lis.port), timeout=30)
        gbuf = bytearray()
        good.sendall(frame(msgs[0]))
        assert ack_code(_recv_frame(good, gbuf))[0] in {"AA", "AE"}

        big = socket.create_connection(("127.0.0.1", lis.port), timeout=30)
        big.sendall(b"\x0b" + msgs[1][:200] + b"X" * 10_000)  # no end marker, past the limit
        bbuf = bytearray()
        nak = _recv_frame(big, bbuf)
        assert nak is not None and ack_code(nak)[0] == "AR" and b"too_large" in nak
        assert _recv_frame(big, bbuf) is None  # then closed

        junk = socket.create_connection(("127.0.0.1", lis.port), timeout=30)
        jbuf = bytearray()
        junk.sendall(b"\x00\xff garbage before any frame \r\n" + frame(b"\xde\xad\xbe\xef"))
        ans = _recv_frame(junk, jbuf)
        assert ans is not None and ack_code(ans)[0] == "AR"
        junk.sendall(frame(msgs[2]))  # the same connection still works
        assert ack_code(_recv_frame(junk, jbuf))[1] == control_id(msgs[2])

        for raw in msgs[3:]:  # the first connection never noticed
            good.sendall(frame(raw))
            assert ack_code(_recv_frame(good, gbuf))[1] == control_id(raw)
        for s in (good, big, junk):
            s.close()
        assert lis.terminate()[0] == 0


def test_sigterm_stops_accepting_and_acks_everything_received(sqlite_settings):
    msgs = clean_messages(300)[:1000]
    acked: list[str] = []

    async def blast(port: int, lis: Listener) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(r) for r in msgs))  # all in flight at once
        await writer.drain()
        first = await reader.readuntil(END)
        acked.append(ack_code(first[1:-2])[1])
        lis.proc.send_signal(15)  # SIGTERM while most are still in flight
        while True:
            try:
                data = await reader.readuntil(END)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            acked.append(ack_code(data[1:-2])[1])
        writer.close()

    with Listener() as lis:
        asyncio.run(blast(lis.port, lis))
        lis.proc.wait(timeout=60)
        err = lis.proc.stderr.read().decode()
        assert lis.proc.returncode == 0, err
        assert "stopping" in err
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", lis.port), timeout=5)
    ledger = {c for _, c in _ledger_keys(sqlite_settings.effective_database_url)}
    # every committed message was acknowledged and every ACK was for a committed message
    assert ledger == set(acked)
    assert acked == [control_id(m) for m in msgs[: len(acked)]]  # in order, none skipped


def test_listen_refuses_demo_secrets_without_demo(sqlite_settings):
    t0 = time.monotonic()
    r = subprocess.run(
        [VIGIL, "listen", "--port", "0"],
        capture_output=True,
        timeout=60,
        env={**__import__("os").environ, "VIGIL_DEMO": "0"},
    )
    assert r.returncode == 1
    assert "demo" in r.stderr.decode() and "VIGIL_PSEUDONYM_SECRET" in r.stderr.decode()
    assert time.monotonic() - t0 < 60


def test_no_ack_when_the_commit_fails(tmp_path):
    """The store breaks (its ledger table is gone): the frame gets no ACK, the connection is
    closed so the sender resends later, and the listener keeps running."""
    from sqlalchemy import text

    from connectors.mllp import MLLPListener
    from connectors.pipeline import Pipeline
    from connectors.store_writer import StoreWriter
    from vigil.settings import demo_fernet_key, load_settings
    from vigil.store.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'broken.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE receivedmessage"))
    raw = clean_messages(40)[0]

    async def main() -> tuple[bytes, int]:
        lis = MLLPListener(
            StoreWriter(engine, demo_fernet_key()), Pipeline(load_settings(demo=True))
        )
        port = await lis.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(raw))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)  # EOF, no ACK
        writer.close()
        # still accepting: a new connection is served (and again not acknowledged)
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        w2.write(frame(raw))
        await w2.drain()
        second = await asyncio.wait_for(r2.read(), 30)
        w2.close()
        await lis.shutdown()
        return answer + second, lis.stats.commits

    answer, commits = asyncio.run(main())
    engine.dispose()
    assert answer == b"" and commits == 0
