"""Batch ingest of HL7 files: worker processes read, parse, map and store pieces of the files.

Why this shape: parsing and mapping are pure CPU and independent per message, so they scale over
processes. The store wants few, large transactions, and SQLite has one writer at a time anyway:
each worker stores its own piece in one transaction, and the workers take turns in piece order
(:class:`Turns`), so "latest message wins" means the same thing as on the wire (messages keep
file order, files their sorted order). Storing in the worker that parsed the piece saves shipping
every mapped message to a separate writer process (pickling, the pipe and unpickling cost ~13 µs
a message, bench/README.md), and there is no writer process to wait for: while one worker
stores, the others parse and prepare (:meth:`StoreWriter.prepare`: everything that needs no
database). Storing itself stays serial, one piece at a time.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.errors import MessageRejected
from connectors.rows import study_key_missing
from connectors.store_writer import (
    DEADLETTER,
    DUPLICATE,
    IGNORED,
    STORED,
    Accepted,
    Ignored,
    Item,
    Prepared,
    Rejected,
    StoreWriter,
    fallback_control_id,
)
from vigil.errors import InvalidInputError
from vigil.settings import Settings

HL7_SUFFIXES = {".hl7", ".txt", ".msg", ".dat", ".batch", ".hl7v2", ""}


def process_raw(pipeline: Any, raw: bytes, max_bytes: int | None = None) -> Item:
    """One raw message -> what the store writer should do with it (never raises)."""
    if max_bytes is not None and len(raw) > max_bytes:
        return _rejected_from_header(
            pipeline, raw, "too_large", f"message is {len(raw)} bytes; the limit is {max_bytes}"
        )
    try:
        result = pipeline.handle(raw)
    except MessageRejected as exc:
        ctrl = exc.control_id or fallback_control_id(raw)
        return Rejected(
            exc.sender or "",
            ctrl,
            exc.message_type or "",
            exc.reason_code,
            exc.reason,
            raw,
            ack_code=_ack_code_for(exc.reason_code),
        )
    except Exception as exc:  # a bug in a mapper must not take the listener down
        return _rejected_from_header(
            pipeline, raw, "internal_error", f"{type(exc).__name__} while mapping"
        )
    if result.outcome == "ignored":
        return Ignored(
            result.sender or "",
            result.control_id or fallback_control_id(raw),
            result.message_type or "",
            result.profile or "",
        )
    if not result.control_id:
        result.control_id = fallback_control_id(raw)
    if study_key_missing(result):
        return Rejected(
            result.sender,
            result.control_id,
            result.message_type,
            "missing_accession",
            "an event names its study by neither accession nor Study Instance UID",
            raw,
        )
    return Accepted(result)


def _ack_code_for(reason_code: str) -> str:
    """AR for bytes that are not a usable HL7 message; AE for a message we could not map."""
    return "AR" if reason_code in {"no_msh", "bad_msh", "too_large", "bad_encoding"} else "AE"


def _rejected_from_header(pipeline: Any, raw: bytes, code: str, reason: str) -> Rejected:
    sender = ctrl = mtype = ""
    try:
        h = pipeline.header(raw[:4096])
        sender, ctrl, mtype = h.sender or "", h.control_id or "", h.message_type or ""
    except Exception:  # no usable header: ledger by digest
        pass
    return Rejected(sender, ctrl or fallback_control_id(raw), mtype, code, reason, raw, "AR")


# --- files --------------------------------------------------------------------------------


def iter_files(paths: Iterable[Path]) -> list[Path]:
    """Every file named, and every non-hidden file under every folder named, in sorted order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                hidden = any(part.startswith(".") for part in rel)
                if f.is_file() and not hidden and f.suffix.lower() in HL7_SUFFIXES:
                    out.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidInputError(f"{p}: no such file or folder")
    return out


def message_starts_near(data: bytes | Any, target: int) -> int:
    """First offset >= ``target`` where a line starts with ``MSH``, or ``len(data)``.

    A cut there splits a file into pieces whose messages are exactly the file's messages: every
    line that starts with MSH begins a new message in :func:`connectors.framing.split_messages`
    (a leading BOM is only stripped at offset 0, and envelope lines only end messages).
    """
    n = len(data)
    pos = max(target, 1)
    while pos < n:
        pos = data.find(b"MSH", pos)
        if pos < 0:
            return n
        if data[pos - 1 : pos] in (b"\r", b"\n"):
            return pos
        pos += 3
    return n


@dataclass(frozen=True, slots=True)
class Piece:
    """A byte range of one file that starts and ends on message boundaries: a worker's job.

    Workers read, split, parse and store their own pieces: the main process never touches them.
    """

    path: Path
    start: int
    end: int


def iter_pieces(files: Iterable[Path], piece_bytes: int) -> Iterator[Piece]:
    """Cut every file into pieces of about ``piece_bytes`` (never inside a message)."""
    import mmap

    for f in files:
        size = f.stat().st_size
        if size <= piece_bytes:
            yield Piece(f, 0, size)
            continue
        with f.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = 0
            while start < size:
                end = message_starts_near(data, start + piece_bytes)
                yield Piece(f, start, end)
                start = end


def read_piece(piece: Piece) -> list[bytes]:
    from connectors.framing import split_messages

    with piece.path.open("rb") as fh:
        fh.seek(piece.start)
        data = fh.read(piece.end - piece.start)
    return list(split_messages(data))


# --- worker processes ---------------------------------------------------------------------

_pipeline: Any = None
_max_bytes: int | None = None
_ledger_engine: Any = None


@dataclass(slots=True)
class Known:
    """Already in the ledger (a re-ingest): counted as a duplicate without parsing or storing."""

    sender: str
    control_id: str


def _init_worker(settings_kwargs: dict[str, Any]) -> None:
    global _pipeline, _max_bytes, _ledger_engine
    import gc

    from connectors.pipeline import Pipeline
    from vigil.settings import load_settings
    from vigil.store.db import make_engine

    settings = load_settings(**settings_kwargs)
    _pipeline = Pipeline(settings)
    _max_bytes = settings.max_message_bytes
    _ledger_engine = make_engine(settings.effective_database_url)
    # The loaded profiles live as long as the worker: keep the cyclic GC from rescanning them.
    # And no cyclic GC while pieces are worked on: a piece's millions of short-lived objects make
    # no cycles worth chasing, and even with raised thresholds the collector cost ~3 % of the
    # CPU (bench/README.md, seventh session). :func:`_piece_done` collects between pieces.
    gc.collect()
    gc.freeze()
    gc.disable()


def _piece_done() -> None:
    """Collect the cycles of the piece just stored, if any, once its objects are released: only
    the young generations, i.e. what was made since the last piece."""
    import gc

    gc.collect(1)


KNOWN_SAMPLE = 64


def _known_keys(raws: list[bytes], sample: bool = True) -> dict[int, Known]:
    """Messages whose (sender, MSH-10) the ledger already holds as stored or ignored.

    A header read costs a tenth of a full parse, so re-running an archive is cheap. Dead-lettered
    ones are parsed again: the profile may have been fixed since. The first few messages are
    looked up first, and the rest only when one of them is known: a fresh backfill then skips
    almost all header reads. (This is only a shortcut: the writer's ledger claim decides.)
    """
    if sample and len(raws) > 2 * KNOWN_SAMPLE:
        head = _known_keys(raws[:KNOWN_SAMPLE], sample=False)
        if not head:
            return head
        rest = _known_keys(raws[KNOWN_SAMPLE:], sample=False)
        return head | {i + KNOWN_SAMPLE: k for i, k in rest.items()}
    from sqlalchemy import select

    from vigil.store.tables import ReceivedMessage as RM

    by_sender: dict[str, dict[str, int]] = {}
    for i, raw in enumerate(raws):
        try:
            h = _pipeline.header(raw[:4096])
        except Exception:  # parsed (and rejected) properly below
            continue
        if h.control_id:
            by_sender.setdefault(h.sender, {})[h.control_id] = i
    out: dict[int, Known] = {}
    if _ledger_engine is None or not by_sender:
        return out
    with _ledger_engine.connect() as conn:
        for sender, ids in by_sender.items():
            ctrls = list(ids)
            for k in range(0, len(ctrls), 900):
                q = select(RM.control_id).where(
                    RM.sender == sender,
                    RM.control_id.in_(ctrls[k : k + 900]),
                    RM.outcome != "deadletter",
                )
                for (ctrl,) in conn.execute(q):
                    out[ids[ctrl]] = Known(sender, ctrl)
    return out


def _process_chunk(piece: Piece) -> list[Item | Known]:
    raws = read_piece(piece)
    known = _known_keys(raws)
    return [known.get(i) or process_raw(_pipeline, raw, _max_bytes) for i, raw in enumerate(raws)]


@dataclass
class PieceCounts:
    """What storing one piece did: a worker hands back only this, never the messages."""

    messages: int
    outcomes: Counter[str]
    dead_by_reason: Counter[str]


@dataclass(slots=True)
class PreparedPiece:
    """A parsed piece, worked out as far as it can be before its turn to store."""

    messages: int
    prepared: Prepared  # of the items not already known to the ledger


def _prepare_piece(writer: StoreWriter, batch: list[Item | Known]) -> PreparedPiece:
    return PreparedPiece(
        len(batch), writer.prepare([it for it in batch if not isinstance(it, Known)])
    )


def _store_piece(writer: StoreWriter, piece: PreparedPiece) -> PieceCounts:
    """Store one piece's items in one transaction (Known ones are duplicates, not written)."""
    items = piece.prepared.items
    outcomes = writer.write_prepared(piece.prepared) if items else []
    counts: Counter[str] = Counter(outcomes)  # counted in C; dead letters are few
    counts[DUPLICATE] += piece.messages - len(items)
    dead: Counter[str] = Counter()
    if DEADLETTER in counts:
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome == DEADLETTER and isinstance(item, Rejected):
                dead[item.reason_code] += 1
    return PieceCounts(piece.messages, counts, dead)


class IngestAborted(Exception):
    """An earlier piece failed (or the run was stopped): later pieces must not be stored."""


class Turns:
    """Pieces are stored strictly in their order, by whichever worker parsed them.

    A worker that has parsed piece ``i`` waits until pieces ``0..i-1`` are committed. A failed
    piece ``k`` stops every piece after it (they would store facts out of order) but none before
    it, so the run reports the first real error; :meth:`abort` stops them all. It cannot
    deadlock: the pool hands pieces out in their order, so the lowest unfinished piece is always
    held by a worker whose turn it is.
    """

    def __init__(self, ctx: Any) -> None:
        self._cond = ctx.Condition()
        self._next = ctx.Value("q", 0, lock=False)  # the piece whose turn it is
        self._failed = ctx.Value("q", 2**62, lock=False)  # the first piece that failed

    def wait(self, index: int) -> None:
        with self._cond:
            while self._next.value != index and self._failed.value >= index:
                self._cond.wait()
            if self._failed.value < index:
                raise IngestAborted(f"piece {self._failed.value} failed before piece {index}")

    def done(self, index: int) -> None:
        with self._cond:
            self._next.value = index + 1
            self._cond.notify_all()

    def fail(self, index: int) -> None:
        with self._cond:
            self._failed.value = min(self._failed.value, index)
            self._cond.notify_all()

    def abort(self) -> None:
        self.fail(-1)


_turns: Turns | None = None
_writer: StoreWriter | None = None


def _init_storing_worker(settings_kwargs: dict[str, Any], turns: Turns) -> None:
    global _turns, _writer
    from multiprocessing.util import Finalize

    _init_worker(settings_kwargs)
    _turns = turns
    _writer = StoreWriter(_ledger_engine, settings_kwargs["deadletter_key"], bulk=True)
    # close the connection when the pool stops this worker: the last one to close checkpoints
    # the WAL into the database file
    Finalize(_writer, _ledger_engine.dispose, exitpriority=10)


def _parse_and_store(index: int, piece: Piece) -> PieceCounts:
    """A worker's job: parse and prepare piece ``index``, wait for its turn, store it, pass the
    turn on. Everything that needs no database happens before the turn (see
    :meth:`StoreWriter.prepare`): only storing itself is serial."""
    assert _turns is not None and _writer is not None
    try:
        prepared = _prepare_piece(_writer, _process_chunk(piece))
        _turns.wait(index)
        counts = _store_piece(_writer, prepared)
    except BaseException:
        _turns.fail(index)
        raise
    _turns.done(index)
    del prepared  # released before the collection, which then walks only what lives on
    _piece_done()
    return counts


# Storing is serial (one piece at a time) and takes about 40 % of a message's work on a large
# store (bench/README.md, seventh session), so beyond ~4 workers the extra ones only wait for
# their turn, each holding a parsed piece and its own SQLite page cache: more cores do not make
# a backfill faster.
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """One worker more than there are CPUs, at most :data:`MAX_DEFAULT_WORKERS`."""
    return min((os.cpu_count() or 1) + 1, MAX_DEFAULT_WORKERS)


def settings_kwargs(settings: Settings) -> dict[str, Any]:
    """What a worker needs to rebuild the same settings (secrets included, never logged)."""
    return {
        "data_dir": settings.data_dir,
        "database_url": settings.database_url,
        "demo": settings.demo,
        "pseudonym_secret": settings.pseudonym_secret.get_secret_value(),
        "deadletter_key": settings.deadletter_key.get_secret_value(),
        "max_message_bytes": settings.max_message_bytes,
        "profiles_dir": settings.profiles_dir,
    }


@dataclass
class IngestSummary:
    messages: int = 0
    files: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def ingest_files(
    files: list[Path],
    settings: Settings,
    engine: Any,
    *,
    workers: int | None = None,
    piece_bytes: int = 16_000_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest ``files`` into ``engine``; ``on_progress(bytes_done, messages_done)`` as it goes.

    Files are cut into pieces of about ``piece_bytes`` (never inside a message); each piece is
    stored in one transaction. ``workers=0`` does everything in this process (small inputs,
    tests); by default one worker more than there are CPUs (at most
    :data:`MAX_DEFAULT_WORKERS`), so that a core whose worker waits for its turn to store has
    another worker's parsing to do.
    """
    import gc
    import time

    t0 = time.perf_counter()
    summary = IngestSummary(files=len(files))
    bytes_done = 0

    def add(piece: Piece, counts: PieceCounts) -> None:
        nonlocal bytes_done
        bytes_done += piece.end - piece.start
        summary.messages += counts.messages
        summary.outcomes.update(counts.outcomes)
        summary.dead_by_reason.update(counts.dead_by_reason)
        if on_progress:
            on_progress(bytes_done, summary.messages)

    if workers is None:
        workers = default_workers()
    pieces = iter_pieces(files, piece_bytes)
    if workers <= 0:
        writer = StoreWriter(engine, settings.deadletter_key.get_secret_value(), bulk=True)
        gc_was_on = gc.isenabled()
        try:
            _init_worker(settings_kwargs(settings))  # the workers' GC rule, in this process
            for piece in pieces:
                add(piece, _store_piece(writer, _prepare_piece(writer, _process_chunk(piece))))
                _piece_done()
        finally:
            if gc_was_on:
                gc.enable()
            gc.unfreeze()
            if writer.bulk:
                engine.dispose()  # pooled connections carry synchronous=NORMAL: start afresh
    else:
        import multiprocessing

        # fork: workers start at once and share the loaded profiles; this process holds no
        # threads or open transactions at this point.
        ctx = multiprocessing.get_context("fork")
        engine.dispose()  # no pooled connection is inherited by the workers
        turns = Turns(ctx)
        with ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_init_storing_worker,
            initargs=(settings_kwargs(settings), turns),
        ) as pool:
            pending: deque[tuple[Piece, Future[PieceCounts]]] = deque()
            try:
                for i, piece in enumerate(pieces):
                    pending.append((piece, pool.submit(_parse_and_store, i, piece)))
                    if len(pending) > 2 * workers:  # results are small: a short queue will do
                        add(*_result(pending.popleft()))
                while pending:
                    add(*_result(pending.popleft()))
            except BaseException:
                turns.abort()  # waiting workers give up; running ones finish their piece
                pool.shutdown(cancel_futures=True)
                raise
    summary.seconds = time.perf_counter() - t0
    for k in (STORED, DUPLICATE, IGNORED, DEADLETTER):
        summary.outcomes.setdefault(k, 0)
    return summary


def _result(job: tuple[Piece, Future[PieceCounts]]) -> tuple[Piece, PieceCounts]:
    return job[0], job[1].result()
