"""Property test: random and mutated frames thrown at the listener — it never crashes and
answers every frame with exactly one ACK (AA, AE or AR), in order."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
from connectors_transport_support import ack_code, clean_messages, frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.mllp import FrameReader, MLLPListener
from connectors.pipeline import Pipeline
from connectors.store_writer import StoreWriter
from vigil.settings import demo_fernet_key, load_settings
from vigil.store.db import make_engine, upgrade

END = b"\x1c\x0d"
MAX = 8192


@pytest.fixture(scope="module")
def listener_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real MLLPListener (real pipeline, real SQLite store) on its own event-loop thread."""
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'vigil.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    cfg = load_settings(demo=True, database_url=url)
    loop = asyncio.new_event_loop()
    listener = MLLPListener(
        StoreWriter(engine, demo_fernet_key()), Pipeline(cfg), max_message_bytes=MAX
    )
    port = loop.run_until_complete(listener.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    asyncio.run_coroutine_threadsafe(listener.shutdown(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    engine.dispose()


VALID = clean_messages(40)[:60]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = draw(st.binary(max_size=20))
        else:
            raw += raw[i:]
    return bytes(raw[:MAX])


def _content_ok(b: bytes) -> bool:
    return END not in b and len(b) <= MAX


frames = st.lists(
    st.one_of(st.binary(max_size=300), mutated(), st.sampled_from(VALID)).filter(_content_ok),
    min_size=1,
    max_size=12,
)


def _read_frames(sock: socket.socket, n: int) -> list[bytes]:
    buf = bytearray()
    out = []
    while len(out) < n:
        data = sock.recv(65536)
        assert data, f"connection closed after {len(out)} of {n} answers"
        buf += data
        while END in buf:
            i = buf.index(END)
            out.append(bytes(buf[buf.index(b"\x0b") + 1 : i]))
            del buf[: i + 2]
    assert not buf
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    contents=frames,
    junk=st.binary(max_size=30).map(lambda b: b.replace(b"\x0b", b"")),
    chunk=st.integers(1, 4096),
)
def test_every_frame_gets_exactly_one_answer(listener_port, contents, junk, chunk):
    stream = junk + b"".join(frame(c) for c in contents)
    with socket.create_connection(("127.0.0.1", listener_port), timeout=30) as sock:
        for i in range(0, len(stream), chunk):  # arbitrary TCP segmentation
            sock.sendall(stream[i : i + chunk])
        answers = _read_frames(sock, len(contents))
    for content, ans in zip(contents, answers, strict=True):
        code, _ctrl = ack_code(ans)
        assert code in {"AA", "AE", "AR"}
        if content in VALID:
            assert code == "AA" or code == "AE"
    # and the listener still serves a fresh connection
    with socket.create_connection(("127.0.0.1", listener_port), timeout=30) as sock:
        sock.sendall(frame(VALID[0]))
        assert ack_code(_read_frames(sock, 1)[0])[0] in {"AA", "AE"}


@given(
    contents=st.lists(st.binary(max_size=200).filter(lambda b: END not in b), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
)
def test_deframer_returns_each_frame_whatever_the_segmentation(contents, cuts):
    stream = b"".join(frame(c) for c in contents)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    reader = FrameReader(max_bytes=10_000)
    got: list[bytes] = []
    for a, b in itertools.pairwise(points):
        got += reader.feed(stream[a:b])
    assert got == contents and reader.too_large is None
