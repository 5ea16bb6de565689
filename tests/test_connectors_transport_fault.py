"""Fault test: SIGKILL the listener in the middle of a 100,000-message stream from several
senders that resend whatever was not acknowledged; after a restart every message is in the
store exactly once."""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict

import pytest
from connectors_transport_support import (
    Listener,
    ResendingSender,
    control_id,
    sender_key,
    sim_messages,
    well_formed,
)
from sqlalchemy import create_engine, func, select

from vigil.store.tables import AIResult, DeadLetter, FinalRead, ReceivedMessage

TOTAL = int(os.environ.get("VIGIL_TEST_FAULT_MESSAGES", "100000"))
REPORTERS = {"RADIS", "SYNRIS"}


@pytest.mark.slow
def test_sigkill_mid_stream_then_resend_stores_every_message_exactly_once(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'fault.sqlite'}"
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DEMO", "1")
    msgs = [r for _, r in sim_messages(TOTAL // 4 + 1000, seed=21) if well_formed(r)][:TOTAL]
    assert len(msgs) == TOTAL
    streams: dict[str, list[bytes]] = defaultdict(list)
    for raw in msgs:
        streams[sender_key(raw).split("^")[0]].append(raw)  # one connection per sending system
    assert len(streams) >= 4

    first = Listener()
    port_ref = [first.port]
    senders = [ResendingSender(s, port_ref, window=128) for s in streams.values()]
    killed_at: list[int] = []
    listeners = [first]

    async def killer() -> None:
        deadline = time.monotonic() + 200
        while sum(len(s.acked) for s in senders) < TOTAL * 0.35:
            assert time.monotonic() < deadline, "stream too slow to reach the kill point"
            await asyncio.sleep(0.02)
        killed_at.append(sum(len(s.acked) for s in senders))
        first.kill()  # SIGKILL: no chance to flush or ACK
        second = await asyncio.to_thread(Listener)
        listeners.append(second)
        port_ref[0] = second.port

    async def main() -> None:
        deadline = time.monotonic() + 280
        await asyncio.gather(killer(), *(s.run(deadline) for s in senders))

    try:
        asyncio.run(main())
        rc, err = listeners[-1].terminate()
        assert rc == 0, err
    finally:
        for lis in listeners:
            lis.__exit__(None, None, None)

    assert killed_at and killed_at[0] < TOTAL
    assert sum(s.reconnects for s in senders) >= 1  # connections really broke mid-stream
    assert sum(len(s.acked) for s in senders) == TOTAL

    eng = create_engine(url)
    with eng.connect() as conn:
        ledger_full = conn.execute(
            select(
                ReceivedMessage.sender,
                ReceivedMessage.control_id,
                ReceivedMessage.message_type,
                ReceivedMessage.outcome,
            )
        ).all()
        ledger = [(r[0], r[1]) for r in ledger_full]
        dup_reads = conn.execute(
            select(FinalRead.source_message_id, FinalRead.finding)
            .group_by(FinalRead.source_message_id, FinalRead.finding)
            .having(func.count() > 1)
        ).all()
        read_sources = set(conn.execute(select(FinalRead.source_message_id)).scalars())
        ai_rows = conn.execute(select(func.count()).select_from(AIResult)).scalar_one()
        dead = conn.execute(
            select(DeadLetter.sender, DeadLetter.control_id)
            .group_by(DeadLetter.sender, DeadLetter.control_id)
            .having(func.count() > 1)
        ).all()
    eng.dispose()
    sent = {(sender_key(m), control_id(m)) for m in msgs}
    assert len(ledger) == TOTAL and set(ledger) == sent  # every message exactly once
    assert dup_reads == [] and dead == []
    # no events lost around the crash: every stored report has its reads
    stored_reports = {
        f"{snd}|{ctrl}"
        for snd, ctrl, mtype, outcome in ledger_full
        if outcome == "stored" and mtype.startswith("ORU") and snd.split("^")[0] in REPORTERS
    }
    assert stored_reports and stored_reports <= read_sources
    assert ai_rows > 0
