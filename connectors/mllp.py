"""asyncio MLLP listener: frames in, ACK only after the message is durably committed.

Why group commit: a durable commit (fsync) costs milliseconds, so committing per message caps a
listener at a few hundred messages a second. Messages arriving on any connection within a few
milliseconds share one transaction; every one of them is ACKed once that transaction commits.
A connection may pipeline frames; its ACKs go out in frame order.

Frames are ``0x0B <message> 0x1C 0x0D``. Bytes outside a frame are skipped; a frame larger than
``max_message_bytes`` gets an AR and the connection is closed (its end cannot be found
reliably); a frame whose content is not HL7 gets an AR and goes to dead letters. One bad
connection never affects another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.ingest import process_raw
from connectors.store_writer import Accepted, Ignored, Item, Rejected, StoreWriter

log = logging.getLogger(__name__)

SB, EB, CR = 0x0B, 0x1C, 0x0D
END = b"\x1c\x0d"
MAX_IN_FLIGHT_PER_CONNECTION = 512


def frame(message: bytes) -> bytes:
    """Wrap one message in MLLP framing."""
    return b"\x0b" + message + END


class FrameReader:
    """Incremental MLLP deframer over a byte stream (no asyncio: easy to test on its own)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self.skipped = 0  # bytes outside any frame
        self.too_large: int | None = None  # size seen when a frame outgrew the limit

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frames' contents.

        When a frame outgrows the limit, ``too_large`` is set and the frames before it are
        returned; the stream cannot be trusted after that (the caller closes it).
        """
        self.buf += data
        out: list[bytes] = []
        buf = self.buf
        while True:
            start = buf.find(b"\x0b")
            if start < 0:
                self.skipped += len(buf)
                buf.clear()
                break
            if start:
                self.skipped += start
                del buf[:start]
            end = buf.find(END, 1)
            if end < 0:
                if len(buf) - 1 > self.max_bytes + 1:
                    self.too_large = len(buf) - 1
                break
            if end - 1 > self.max_bytes:
                self.too_large = end - 1
                break
            out.append(bytes(buf[1:end]))
            del buf[: end + 2]
        return out


@dataclass
class ListenerStats:
    connections: int = 0
    frames: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    commits: int = 0


def _now_hl7() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def minimal_ack(raw: bytes, code: str, error: str | None = None) -> bytes:
    """An HL7 ACK built without parsing beyond MSH (used for garbage frames and as fallback)."""
    fields: list[bytes] = []
    if raw.startswith(b"MSH") and len(raw) > 8:
        sep = raw[3:4]
        fields = raw.split(b"\r", 1)[0].split(sep)
    enc = b"^~\\&"
    sep = b"|"
    if fields and len(fields) > 1:
        sep = raw[3:4]
        enc = fields[1] or enc

    def f(i: int) -> bytes:
        return fields[i] if len(fields) > i else b""

    ctrl = f(9)
    msh = sep.join(
        [
            b"MSH",
            enc,
            f(4) or b"VIGIL",
            f(5),
            f(2),
            f(3),
            _now_hl7().encode(),
            b"",
            b"ACK",
            b"ACK" + ctrl[:40],
            b"P",
            f(11) or b"2.5",
        ]
    )
    msa = sep.join([b"MSA", code.encode(), ctrl])
    segs = [msh, msa]
    if error:
        text = error.encode("ascii", "replace")[:200]
        for ch in (sep, enc[:1], b"\r"):
            if ch:
                text = text.replace(ch, b" ")
        sev = b"E"
        segs.append(sep.join([b"ERR", b"", b"", b"207", sev, b"", b"", b"", text]))
    return b"\r".join(segs) + b"\r"


def build_ack(raw: bytes, code: str, error: str | None = None) -> bytes:
    """The parse layer's ACK builder where it can read the message; ours otherwise."""
    try:
        from connectors.ack import build_ack as parse_layer_ack

        return parse_layer_ack(raw, code, error)
    except Exception:
        return minimal_ack(raw, code, error)


def ack_for(item: Item, raw: bytes) -> bytes:
    if isinstance(item, Accepted | Ignored):
        return build_ack(raw, "AA")
    assert isinstance(item, Rejected)
    return build_ack(raw, item.ack_code, f"{item.reason_code}: {item.reason}")


class MLLPListener:
    """Many connections, many messages each; one committer task doing group commits."""

    def __init__(
        self,
        writer: StoreWriter,
        pipeline: Any,
        *,
        max_message_bytes: int = 1_048_576,
        batch_window_s: float = 0.004,
        max_batch: int = 2000,
    ) -> None:
        self.writer = writer
        self.pipeline = pipeline
        self.max_message_bytes = max_message_bytes
        self.batch_window_s = batch_window_s
        self.max_batch = max_batch
        self.stats = ListenerStats()
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[str]]] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._committer: asyncio.Task[None] | None = None
        self._closing = False
        self.on_commit: Callable[[int], None] | None = None  # tests and benches observe commits

    async def start(self, host: str, port: int) -> int:
        """Start listening; returns the bound port (``port=0`` picks a free one)."""
        self._committer = asyncio.create_task(self._commit_loop())
        self._server = await asyncio.start_server(self._handle, host, port, limit=1 << 20)
        return self._server.sockets[0].getsockname()[1]

    async def shutdown(self) -> None:
        """Stop accepting, stop reading, commit and ACK every frame already received, close."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        for t in list(self._conn_tasks):
            t.cancel()
        if self._conn_tasks:
            await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        await self._queue.put(None)  # type: ignore[arg-type]  # committer: drain, then stop
        if self._committer is not None:
            await self._committer
        if self._server is not None:
            await self._server.wait_closed()

    # -- committer -------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = loop.time() + self.batch_window_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            items = [b[0] for b in batch]
            try:
                outcomes = await asyncio.to_thread(self.writer.write, items)
            except Exception as exc:  # store down: no ACK; senders resend later
                log.error("commit failed for %d messages: %s", len(items), exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.stats.commits += 1
            for (_, fut), outcome in zip(batch, outcomes, strict=True):
                self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
                if not fut.done():
                    fut.set_result(outcome)
            if self.on_commit is not None:
                self.on_commit(len(items))

    # -- connections -----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        self._conn_tasks.add(task)
        self.stats.connections += 1
        pending: asyncio.Queue[Any] = asyncio.Queue(MAX_IN_FLIGHT_PER_CONNECTION)
        acker = asyncio.create_task(self._ack_loop(pending, writer))
        deframer = FrameReader(self.max_message_bytes)
        loop = asyncio.get_running_loop()
        try:
            while not self._closing:
                data = await reader.read(1 << 16)
                if not data:
                    break
                for raw in deframer.feed(data):
                    await self._submit(raw, pending, loop)
                if deframer.too_large is not None:
                    reason = (
                        f"too_large: frame of at least {deframer.too_large} bytes; "
                        f"max_message_bytes is {self.max_message_bytes}"
                    )
                    head = bytes(deframer.buf[1:4097])
                    await pending.put(minimal_ack(head, "AR", reason))
                    break
        except (asyncio.CancelledError, ConnectionError):
            pass  # shutdown or peer reset: ACK what was already received, then close
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await pending.put(None)
                await acker
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._conn_tasks.discard(task)

    async def _submit(
        self, raw: bytes, pending: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.stats.frames += 1
        item = process_raw(self.pipeline, raw, self.max_message_bytes)
        fut: asyncio.Future[str] = loop.create_future()
        # Into the ACK queue first (may wait, may be cancelled at shutdown: then nothing was
        # committed), then to the committer without a suspension point: a committed message
        # always has its ACK queued.
        await pending.put((item, raw, fut))
        self._queue.put_nowait((item, fut))

    async def _ack_loop(self, pending: asyncio.Queue[Any], writer: asyncio.StreamWriter) -> None:
        """Write ACKs in frame order; ACKs of one group commit leave in one send."""
        broken = False
        out: list[bytes] = []
        while True:
            if out and pending.empty():
                broken = await self._flush(writer, out, broken)
            entry = await pending.get()
            if entry is None:
                await self._flush(writer, out, broken)
                return
            if isinstance(entry, bytes):  # an immediate NAK (too-large frame)
                out.append(frame(entry))
                continue
            item, raw, fut = entry
            if not fut.done():
                broken = await self._flush(writer, out, broken)
            try:
                await fut
            except Exception:
                broken = True  # not committed: no ACK, the sender must resend
                out.clear()
                writer.close()
                continue
            if not broken:
                out.append(frame(ack_for(item, raw)))

    @staticmethod
    async def _flush(writer: asyncio.StreamWriter, out: list[bytes], broken: bool) -> bool:
        if not out or broken:
            out.clear()
            return broken
        try:
            writer.write(b"".join(out))
            out.clear()
            await writer.drain()
        except ConnectionError:
            out.clear()
            return True  # peer gone; keep draining so the reader can finish
        return False
