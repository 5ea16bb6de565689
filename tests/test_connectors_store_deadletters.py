"""Dead letters: stored with reasons and encrypted bytes, listed without PHI, replayed once the
missing profile exists, purged by age or all (with confirmation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from connectors_transport_support import clean_messages, control_id
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from connectors.ingest import process_raw
from connectors.pipeline import Pipeline
from connectors.profile import load_profiles
from connectors.store_writer import StoreWriter
from vigil.cli.app import app
from vigil.store.tables import AIResult, DeadLetter, ReceivedMessage

runner = CliRunner()


def _count(engine, stmt) -> int:
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def test_list_replay_after_profile_added_and_purge(settings, engine):
    msgs = clean_messages(40)
    neuro = [m for m in msgs if m.startswith(b"MSH|^~\\&|NEUROVUE|")]
    bad = re.sub(rb"(ICH_SCORE\^ICH probability\^NVU\|\|)[^|]*", rb"\1abc", neuro[0])
    bad = bad.replace(control_id(bad).encode(), b"BADSCORE1", 1)
    assert len(neuro) >= 5
    # A site before the NeuroVue profile was installed (and with no fallback profile).
    partial = [p for p in load_profiles() if p.name not in {"neurovue", "generic-ris"}]
    before = Pipeline(settings, profiles=partial)
    writer = StoreWriter(engine, settings.deadletter_key.get_secret_value())
    full = Pipeline(settings)
    items = [process_raw(before, m) for m in neuro] + [process_raw(full, bad)]
    outcomes = writer.write(items)
    assert outcomes == ["deadletter"] * (len(neuro) + 1)
    codes = _count(engine, select(func.count(func.distinct(DeadLetter.reason_code))))
    assert codes == 2

    listed = runner.invoke(app, ["deadletters", "list"])
    assert listed.exit_code == 0, listed.output
    assert "unknown_sender" in listed.output and "bad_score" in listed.output
    mrns = {re.search(rb"PID\|[^|]*\|\|(\d+)", m).group(1).decode() for m in neuro}
    assert not any(mrn in listed.output for mrn in mrns)

    # the profile is installed (shipped profiles are back): replay what failed for that reason
    replayed = runner.invoke(app, ["deadletters", "replay", "--reason", "unknown_sender"])
    assert replayed.exit_code == 0, replayed.output
    assert f"stored: {len(neuro)}" in replayed.output
    assert _count(engine, select(func.count()).select_from(AIResult)) == len(
        {re.search(rb"OBR\|[^|]*\|\|([^|^]*)", m).group(1) for m in neuro}
    )
    stored = select(func.count()).where(ReceivedMessage.outcome == "stored")
    assert _count(engine, stored) == len(neuro)
    again = runner.invoke(app, ["deadletters", "replay", "--reason", "unknown_sender"])
    assert "nothing to replay" in again.output

    with engine.connect() as conn:
        bad_id = conn.execute(
            select(DeadLetter.id).where(DeadLetter.reason_code == "bad_score")
        ).scalar_one()
    still = runner.invoke(app, ["deadletters", "replay", "--id", str(bad_id)])
    assert "failed: bad_score: 1" in still.output
    # a resend of the same bad message is acknowledged again but not dead-lettered twice
    assert writer.write([process_raw(full, bad)]) == ["duplicate"]
    total = select(func.count()).select_from(DeadLetter)
    assert _count(engine, total) == len(neuro) + 1

    # purge: by age (one is made old), then --all only with confirmation
    old = datetime.now(UTC) - timedelta(days=settings.deadletter_retention_days + 1)
    with engine.begin() as conn:
        conn.execute(update(DeadLetter).where(DeadLetter.id == bad_id).values(received_at=old))
    purged = runner.invoke(app, ["deadletters", "purge"])
    assert "purged 1 dead letter" in purged.output
    assert _count(engine, total) == len(neuro)
    refused = runner.invoke(app, ["deadletters", "purge", "--all"], input="n\n")
    assert refused.exit_code == 1 and _count(engine, total) == len(neuro)
    purged = runner.invoke(app, ["deadletters", "purge", "--all"], input="y\n")
    assert f"purged {len(neuro)} dead letter" in purged.output
    assert _count(engine, total) == 0
