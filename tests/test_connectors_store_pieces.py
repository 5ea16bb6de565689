"""`vigil ingest` cuts files into byte pieces that workers split, parse and store themselves,
taking turns in piece order: neither may change which messages are seen, their order, or what
is stored; a piece that fails stops the pieces after it, never those before it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors import ingest
from connectors.framing import split_messages
from connectors.ingest import ingest_files, iter_files, iter_pieces, read_piece
from vigil.settings import load_settings
from vigil.simulate import SimulationConfig, simulate
from vigil.store.db import dispose_all, open_store
from vigil.store.tables import (
    AIModel,
    AIResult,
    DeadLetter,
    FinalRead,
    Patient,
    ReceivedMessage,
    Study,
)


def _pieced(files: list[Path], piece_bytes: int) -> list[bytes]:
    return [raw for piece in iter_pieces(files, piece_bytes) for raw in read_piece(piece)]


def _whole(files: list[Path]) -> list[bytes]:
    return [raw for f in files for raw in split_messages(f.read_bytes())]


segment = st.sampled_from(
    [b"PID|1||123^^^H||DOE^JANE", b"OBR|1|A1|A1|CT", b"OBX|1|TX|||MSH in text", b" PV1|1|O"]
)
message = st.builds(
    lambda ctrl, segs: [b"MSH|^~\\&|RIS|H|V|V|20260101||ORU^R01|" + ctrl + b"|P|2.5", *segs],
    st.binary(min_size=1, max_size=6).map(bytes.hex).map(str.encode),
    st.lists(segment, max_size=4),
)
sep = st.sampled_from([b"\r", b"\n", b"\r\n"])
wrapper = st.sampled_from(["none", "mllp", "batch", "bom"])


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(message, min_size=1, max_size=12), sep, wrapper, st.integers(1, 400))
def test_pieces_hold_exactly_the_files_messages(tmp_path, messages, eol, wrap, piece_bytes):
    body = b""
    for segs in messages:
        one = eol.join(segs) + eol
        if wrap == "mllp":
            one = b"\x0b" + one + b"\x1c\r"
        body += one
    if wrap == "batch":
        body = b"FHS|^~\\&" + eol + b"BHS|^~\\&" + eol + body + b"BTS|1" + eol + b"FTS|1" + eol
    if wrap == "bom":
        body = b"\xef\xbb\xbf" + body
    f = tmp_path / "feed.hl7"
    f.write_bytes(body)
    assert _pieced([f], piece_bytes) == _whole([f])
    assert len(_whole([f])) == len(messages)


def test_pieces_of_the_real_samples(samples_dir):
    files = iter_files([samples_dir])
    whole = _whole(files)
    assert len(whole) >= 20
    for piece_bytes in (1, 97, 1000, 10**9):
        assert _pieced(files, piece_bytes) == whole


def _stored(engine) -> dict[str, list[tuple]]:
    """What was stored, without surrogate ids or arrival times (which differ run to run)."""
    s, r, m, f, p, led = Study, AIResult, AIModel, FinalRead, Patient, ReceivedMessage
    study_cols = [c for c in s.__table__.columns if c.name != "id"]
    with engine.connect() as conn:
        return {
            "studies": sorted(conn.execute(select(*study_cols)).all(), key=repr),
            "results": sorted(
                conn.execute(
                    select(s.site_code, s.accession, m.name, r.finding, r.score, r.call)
                    .join(s, s.id == r.study_id)
                    .join(m, m.id == r.model_id)
                ).all()
            ),
            "reads": sorted(
                conn.execute(
                    select(
                        s.site_code,
                        s.accession,
                        f.finding,
                        f.label,
                        f.report_status,
                        f.reported_at,
                        f.is_current,
                    ).join(s, s.id == f.study_id)
                ).all(),
                key=repr,
            ),
            "patients": sorted(
                conn.execute(select(p.pseudonym, p.sex, p.race, p.ethnicity, p.merged_into)).all(),
                key=repr,
            ),
            "ledger": sorted(conn.execute(select(led.sender, led.control_id, led.outcome)).all()),
        }


def test_small_pieces_and_batches_store_the_same(settings, engine, tmp_path):
    sim = tmp_path / "sim"
    simulate(SimulationConfig(studies=150, months=2, seed=5, out=sim))
    files = iter_files([sim / "feeds"])
    # reference: one process, default pieces and batches, into its own SQLite file
    ref_settings = load_settings(
        data_dir=tmp_path / "ref", database_url=f"sqlite:///{tmp_path}/ref.sqlite", demo=True
    )
    ref_engine = open_store(ref_settings)
    ref = ingest_files(files, ref_settings, ref_engine, workers=0)
    expected = _stored(ref_engine)
    # the summary's dead letters by reason are the dead-letter table's
    dl = DeadLetter.__table__.c
    with ref_engine.connect() as conn:
        table = dict(
            conn.execute(select(dl.reason_code, func.count()).group_by(dl.reason_code)).all()
        )
    assert table and dict(ref.dead_by_reason) == table
    assert sum(table.values()) == ref.outcomes["deadletter"]
    dispose_all()

    # half the files first, then everything cut small over three workers that take turns to
    # store their pieces (so many turns, in every order of finishing): the first half must be
    # reported duplicate although the ledger pre-check only samples the head of each piece
    half = files[: len(files) // 2]
    first = ingest_files(half, settings, engine, workers=0, piece_bytes=5_000)
    both = ingest_files(files, settings, engine, workers=3, piece_bytes=3_000)
    assert both.messages == ref.messages
    assert both.outcomes["duplicate"] == first.messages
    assert both.outcomes["stored"] + first.outcomes["stored"] == ref.outcomes["stored"]
    assert _stored(engine) == expected


class PieceBroke(RuntimeError):
    pass


def test_a_failed_piece_stops_the_pieces_after_it_and_no_earlier_one(
    settings, engine, tmp_path, monkeypatch
):
    """Piece k fails in its worker (a disk error, say): the run raises that error, every piece
    before k is stored, none after it (they would store facts out of order)."""
    sim = tmp_path / "sim"
    simulate(SimulationConfig(studies=120, months=2, seed=8, out=sim))
    files = iter_files([sim / "feeds"])
    pieces = list(iter_pieces(files, 4_000))
    k = len(pieces) // 2
    assert k > 3
    bad = pieces[k]
    real = ingest._process_chunk

    def failing(piece):  # fork: the workers inherit this
        if piece == bad:
            raise PieceBroke(f"cannot read {piece.path.name} at {piece.start}")
        return real(piece)

    monkeypatch.setattr(ingest, "_process_chunk", failing)
    with pytest.raises(PieceBroke):
        ingest_files(files, settings, engine, workers=3, piece_bytes=4_000)
    with engine.connect() as conn:
        ledger = conn.execute(select(func.count()).select_from(ReceivedMessage)).scalar_one()
    before = sum(len(read_piece(p)) for p in pieces[:k])
    assert ledger == before


def test_turns_stop_only_the_pieces_after_a_failure():
    """The rule itself: piece 2 fails before its turn; piece 1 still gets its turn, piece 3 is
    refused at once, and an abort (the run stopped) refuses everyone."""
    import multiprocessing

    turns = ingest.Turns(multiprocessing.get_context("fork"))
    turns.done(0)
    turns.fail(2)
    with pytest.raises(ingest.IngestAborted):
        turns.wait(3)
    turns.wait(1)  # returns: piece 1's turn has come, the failure is after it
    turns.abort()
    with pytest.raises(ingest.IngestAborted):
        turns.wait(1)
