"""Dead letters: list them (reasons only, never PHI), replay them through the pipeline, purge.

Why encrypted raw bytes: a message that could not be mapped still holds names, MRNs and report
text. It is kept only so that it can be replayed once the profile is fixed, encrypted with
``settings.deadletter_key`` (Fernet), and purged after ``deadletter_retention_days``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, or_, select, update

from connectors.store_writer import Item, Rejected, StoreWriter
from vigil.store.tables import DeadLetter

DONE = ("stored", "ignored", "duplicate")  # replay outcomes that settle a dead letter


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    received_at: datetime | None
    sender: str
    control_id: str
    message_type: str
    reason_code: str
    reason: str
    replayed_at: datetime | None
    replay_outcome: str


@dataclass(frozen=True)
class ReasonCount:
    reason_code: str
    total: int
    pending: int  # not yet replayed successfully
    latest: datetime | None


def _pending() -> Any:
    return or_(DeadLetter.replay_outcome.is_(None), DeadLetter.replay_outcome.not_in(DONE))


def list_dead_letters(
    engine: Engine, *, reason: str | None = None, limit: int = 50, pending_only: bool = False
) -> list[DeadLetterRow]:
    """Newest first; never touches the encrypted bytes."""
    t = DeadLetter.__table__.c
    q = select(
        t.id,
        t.received_at,
        t.sender,
        t.control_id,
        t.message_type,
        t.reason_code,
        t.reason,
        t.replayed_at,
        t.replay_outcome,
    ).order_by(t.id.desc())
    if reason:
        q = q.where(t.reason_code == reason)
    if pending_only:
        q = q.where(_pending())
    q = q.limit(limit)
    with engine.connect() as conn:
        return [DeadLetterRow(*r) for r in conn.execute(q)]


def reasons_summary(engine: Engine) -> list[ReasonCount]:
    t = DeadLetter.__table__.c
    pending = func.sum(case((_pending(), 1), else_=0))
    q = (
        select(t.reason_code, func.count(), pending, func.max(t.received_at))
        .group_by(t.reason_code)
        .order_by(func.count().desc())
    )
    with engine.connect() as conn:
        return [
            ReasonCount(code, int(n), int(p or 0), latest) for code, n, p, latest in conn.execute(q)
        ]


def replay(
    engine: Engine,
    settings: Any,
    *,
    ids: Sequence[int] = (),
    reason: str | None = None,
    pipeline: Any = None,
    batch: int = 500,
) -> Counter[str]:
    """Re-run pending dead letters through the (fixed) pipeline; returns outcome counts.

    A message that now maps is stored and its ledger entry flips to ``stored``; one that still
    fails keeps its dead letter, with ``replay_outcome`` saying why.
    """
    from cryptography.fernet import Fernet, InvalidToken

    from connectors.ingest import process_raw

    if pipeline is None:
        from connectors.pipeline import Pipeline

        pipeline = Pipeline(settings)
    fernet = Fernet(settings.deadletter_key.get_secret_value().encode())
    writer = StoreWriter(engine, settings.deadletter_key.get_secret_value())
    t = DeadLetter.__table__.c
    q = select(t.id, t.raw_encrypted).where(_pending()).order_by(t.id)
    if ids:
        q = q.where(t.id.in_(list(ids)))
    if reason:
        q = q.where(t.reason_code == reason)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    counts: Counter[str] = Counter()
    now = datetime.now(UTC)
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        items: list[Item] = []
        dl_ids: list[int] = []
        unreadable: list[int] = []
        for dl_id, blob in part:
            try:
                raw = fernet.decrypt(blob)
            except InvalidToken:
                unreadable.append(dl_id)
                continue
            items.append(process_raw(pipeline, raw, settings.max_message_bytes))
            dl_ids.append(dl_id)

        def mark(
            conn: Connection,
            outcomes: list[str],
            items: list[Item] = items,
            dl_ids: list[int] = dl_ids,
            unreadable: list[int] = unreadable,
        ) -> None:
            for dl_id, item, outcome in zip(dl_ids, items, outcomes, strict=True):
                if isinstance(item, Rejected):
                    result = f"failed: {item.reason_code}"[:64]
                else:
                    result = outcome
                counts[result] += 1
                conn.execute(
                    update(DeadLetter)
                    .where(DeadLetter.id == dl_id)
                    .values(replayed_at=now, replay_outcome=result)
                )
            for dl_id in unreadable:
                counts["undecryptable"] += 1
                conn.execute(
                    update(DeadLetter)
                    .where(DeadLetter.id == dl_id)
                    .values(replayed_at=now, replay_outcome="undecryptable")
                )

        writer.write(items, now=now, after=mark)
    return counts


def purge(engine: Engine, *, now: datetime, retention_days: int | None, purge_all: bool) -> int:
    """Delete dead letters older than ``retention_days`` (or every one); returns how many."""
    q = delete(DeadLetter)
    if not purge_all:
        if retention_days is None:
            raise ValueError("retention_days is required unless purge_all")
        q = q.where(DeadLetter.received_at < now - timedelta(days=retention_days))
    with engine.begin() as conn:
        return conn.execute(q).rowcount or 0
