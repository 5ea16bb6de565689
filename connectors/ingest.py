"""Batch ingest of HL7 files: split -> parse+map in worker processes -> one store writer.

Why this shape: parsing and mapping are pure CPU and independent per message, so they scale
over processes; the store wants a single writer with large transactions (SQLite has one writer
anyway, and PostgreSQL is fastest with few big executemany statements). Messages keep file order
(and files their sorted order), so "latest message wins" means the same thing as on the wire.
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
from connectors.rows import flatten, study_key_missing
from connectors.store_writer import (
    DEADLETTER,
    DUPLICATE,
    IGNORED,
    STORED,
    Accepted,
    Ignored,
    Item,
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


def iter_raw(files: Iterable[Path]) -> Iterator[tuple[bytes, int]]:
    """(message bytes, bytes of its file consumed so far) for every message in ``files``."""
    from connectors.framing import split_messages

    for f in files:
        data = f.read_bytes()
        for raw in split_messages(data):
            yield raw, 0
        yield b"", len(data)  # file done: progress by bytes


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

    Workers read and split their own pieces, so the writer process never touches raw bytes.
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
    gc.collect()
    gc.freeze()


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


def _process_chunk(raws: list[bytes] | Piece) -> list[Item | Known]:
    if isinstance(raws, Piece):
        raws = read_piece(raws)
    known = _known_keys(raws)
    out: list[Item | Known] = []
    for i, raw in enumerate(raws):
        item = known.get(i) or process_raw(_pipeline, raw, _max_bytes)
        # plain tuples cross the process boundary several times cheaper than event objects
        out.append(flatten(item.mapped) if type(item) is Accepted else item)
    return out


def _register_fast_pickling() -> None:
    """Pickle the event dataclasses as (class, field tuple): dataclass's own slots pickling
    calls Python code per field, which made pickling cost as much as parsing."""
    import copyreg
    import dataclasses
    import operator

    from connectors import events as ev

    for cls in (
        ev.PatientInfo,
        ev.StudyInfo,
        ev.PatientUpdate,
        ev.PatientMerge,
        ev.OrderEvent,
        ev.AIResultEvent,
        ev.ReadEvent,
        ev.MappedMessage,
    ):
        names = [f.name for f in dataclasses.fields(cls)]
        if len(names) == 1:  # attrgetter of one name returns the value, not a tuple
            copyreg.pickle(cls, lambda o, n=names[0], c=cls: (c, (getattr(o, n),)))
        else:
            getter = operator.attrgetter(*names)
            copyreg.pickle(cls, lambda o, g=getter, c=cls: (c, g(o)))


_register_fast_pickling()


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


def _in_order(
    pool: ProcessPoolExecutor, pieces: Iterator[Piece], ahead: int
) -> Iterator[tuple[Piece, list[Item | Known]]]:
    """Results of ``pieces`` in their order, with at most ``ahead`` of them in flight."""
    pending: deque[tuple[Piece, Future[list[Item | Known]]]] = deque()
    for piece in pieces:
        pending.append((piece, pool.submit(_process_chunk, piece)))
        if len(pending) >= ahead:
            p, fut = pending.popleft()
            yield p, fut.result()
    while pending:
        p, fut = pending.popleft()
        yield p, fut.result()


def _batched(
    results: Iterator[tuple[Piece, list[Item | Known]]],
    size: int,
    on_bytes: Callable[[int], None],
) -> Iterator[list[Item | Known]]:
    """Consecutive pieces' results joined into write batches of at least ``size`` items."""
    batch: list[Item | Known] = []
    for piece, items in results:
        batch.extend(items)
        on_bytes(piece.end - piece.start)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_files(
    files: list[Path],
    settings: Settings,
    engine: Any,
    *,
    workers: int | None = None,
    piece_bytes: int = 2_000_000,
    write_batch: int = 24_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest ``files`` into ``engine``; ``on_progress(bytes_done, messages_done)`` as it goes.

    ``workers=0`` parses in this process (small inputs, tests); default: one per CPU. Workers
    read, split, parse and map pieces of about ``piece_bytes``; this process only writes, one
    transaction per ``write_batch`` messages or so.
    """
    import gc
    import time

    t0 = time.perf_counter()
    # Millions of short-lived event objects and large id caches: the default thresholds make
    # the cyclic GC rescan the caches over and over. Nothing here builds cycles worth chasing.
    gc.collect()
    gc.freeze()
    old_threshold = gc.get_threshold()
    gc.set_threshold(200_000, 50, 1000)
    writer = StoreWriter(engine, settings.deadletter_key.get_secret_value(), bulk=True)
    summary = IngestSummary(files=len(files))
    bytes_done = 0

    def file_done(n: int) -> None:
        nonlocal bytes_done
        bytes_done += n
        if on_progress:
            on_progress(bytes_done, summary.messages)

    def store(batch: list[Item | Known]) -> None:
        items = [it for it in batch if not isinstance(it, Known)]
        outcomes = writer.write(items) if items else []
        summary.messages += len(batch)
        summary.outcomes[DUPLICATE] += len(batch) - len(items)
        summary.outcomes.update(outcomes)  # counted in C; dead letters are few
        if DEADLETTER in outcomes:
            for item, outcome in zip(items, outcomes, strict=True):
                if outcome == DEADLETTER and isinstance(item, Rejected):
                    summary.dead_by_reason[item.reason_code] += 1
        if on_progress:
            on_progress(bytes_done, summary.messages)

    try:
        if workers is None:
            workers = os.cpu_count() or 1
        pieces = iter_pieces(files, piece_bytes)
        results: Iterator[tuple[Piece, list[Item | Known]]]
        if workers <= 0:
            _init_worker(settings_kwargs(settings))
            results = ((p, _process_chunk(p)) for p in pieces)
            for batch in _batched(results, write_batch, file_done):
                store(batch)
        else:
            import multiprocessing

            # fork: workers start at once and share the loaded profiles; the parent holds no
            # threads or open transactions at this point.
            ctx = multiprocessing.get_context("fork")
            engine.dispose()  # no pooled connection is inherited by the workers
            with ProcessPoolExecutor(
                workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(settings_kwargs(settings),),
            ) as pool:
                # enough pieces in flight to keep the workers busy while a batch is written
                # (~1,000 bytes a message: a batch spans write_batch * 1000 / piece_bytes pieces)
                ahead = workers * 2 + 2 + write_batch * 1000 // piece_bytes
                results = _in_order(pool, pieces, ahead)
                for batch in _batched(results, write_batch, file_done):
                    store(batch)
    finally:
        gc.set_threshold(*old_threshold)
        gc.unfreeze()
        if writer.bulk:
            engine.dispose()  # pooled connections carry synchronous=NORMAL: start afresh
    summary.seconds = time.perf_counter() - t0
    for k in (STORED, DUPLICATE, IGNORED, DEADLETTER):
        summary.outcomes.setdefault(k, 0)
    return summary
