"""Store writer: pairing in both orders, corrections, prelims, UID fallback, latest AI wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as hst
from sqlalchemy import select
from sqlmodel import Session

from connectors.events import (
    AIResultEvent,
    MappedMessage,
    OrderEvent,
    PatientInfo,
    PatientMerge,
    PatientUpdate,
    ReadEvent,
    StudyInfo,
)
from connectors.rows import MAX_US, MIN_US
from connectors.store_writer import (
    DUPLICATE,
    STORED,
    Accepted,
    StoreWriter,
    unpaired_summary,
)
from vigil.store.tables import AIModel, AIResult, FinalRead, Patient, ReceivedMessage, Study

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PAT = PatientInfo(pseudonym="p" * 16, sex="F", race="2106-3", age_at_study=61)


def study(acc: str = "A1", site: str = "NGH", uid: str | None = "1.2.3.4", **kw) -> StudyInfo:
    return StudyInfo(site_code=site, accession=acc, study_uid=uid, modality="CT", **kw)


def ai(ctrl: str, st: StudyInfo, score: float, at: datetime, model: str = "neurovue-ich"):
    ev = AIResultEvent(st, PAT, model, "ich", "2.1", score, score >= 0.5, at)
    return Accepted(MappedMessage("NEUROVUE^NGH", ctrl, "ORU^R01", "neurovue", [ev]))


def read(ctrl: str, st: StudyInfo, label: str, status: str, at: datetime, pat=PAT, **kw):
    ev = ReadEvent(st, pat, "ich", label, "coded", "ICH^Y", status, "rad1", at, **kw)
    return Accepted(MappedMessage("RADIS^NGH", ctrl, "ORU^R01", "radis", [ev]))


def _reads(engine):
    with Session(engine) as s:
        return s.exec(select(FinalRead).order_by(FinalRead.id)).scalars().all()


def _study(engine, acc: str = "A1"):
    with Session(engine) as s:
        return s.exec(select(Study).where(Study.accession == acc)).scalars().one()


def test_ai_first_then_read_days_later_pairs(engine):
    w = StoreWriter(engine, None)
    assert w.write([ai("m1", study(), 0.9, T0)]) == [STORED]
    # a different writer (another process) days later
    w2 = StoreWriter(engine, None)
    later = T0 + timedelta(days=3)
    assert w2.write([read("r1", study(uid=None), "positive", "F", later)]) == [STORED]
    st = _study(engine)
    with Session(engine) as s:
        res = s.exec(select(AIResult)).scalars().one()
        assert res.study_id == st.id
        assert (
            s.exec(select(Study)).scalars().all() == [st]
            or len(s.exec(select(Study)).scalars().all()) == 1
        )
    (fr,) = _reads(engine)
    assert (fr.study_id, fr.is_current, fr.label) == (st.id, True, "positive")
    assert st.final_report_at == later and st.study_uid == "1.2.3.4"
    rows = unpaired_summary(engine, now=later)
    assert [(r.model, r.results, r.paired, r.waiting, r.read_never_came) for r in rows] == [
        ("neurovue-ich", 1, 1, 0, 0)
    ]


def test_read_first_then_ai_pairs_and_unknown_model_is_created(engine):
    w = StoreWriter(engine, None)
    w.write([read("r1", study(), "negative", "F", T0)])
    w.write([ai("m1", study(), 0.2, T0 + timedelta(hours=1), model="brand-new-model")])
    with Session(engine) as s:
        assert len(s.exec(select(Study)).scalars().all()) == 1
        model = s.exec(select(AIModel)).scalars().one()
        assert (model.name, model.finding, model.status) == (
            "brand-new-model",
            "ich",
            "unregistered",
        )
        res = s.exec(select(AIResult)).scalars().one()
        assert res.model_id == model.id and res.study_id == _study(engine).id


def test_same_accession_at_two_sites_are_two_studies(engine):
    w = StoreWriter(engine, None)
    w.write([ai("m1", study(site="NGH"), 0.9, T0), ai("m2", study(site="SCH"), 0.1, T0)])
    w.write([read("r1", study(site="SCH"), "negative", "F", T0)])
    with Session(engine) as s:
        studies = {x.site_code: x.id for x in s.exec(select(Study)).scalars()}
        assert len(studies) == 2
        (fr,) = s.exec(select(FinalRead)).scalars().all()
        assert fr.study_id == studies["SCH"]
    rows = unpaired_summary(engine, now=T0 + timedelta(days=30), stale_after_days=7)
    assert [(r.results, r.paired, r.waiting, r.read_never_came) for r in rows] == [(2, 1, 0, 1)]
    rows = unpaired_summary(engine, now=T0 + timedelta(days=1), stale_after_days=7)
    assert [(r.results, r.paired, r.waiting, r.read_never_came) for r in rows] == [(2, 1, 1, 0)]


def test_prelim_is_never_current_and_correction_supersedes(engine):
    w = StoreWriter(engine, None)
    w.write([read("r1", study(), "uncertain", "P", T0)])
    (p,) = _reads(engine)
    assert p.is_current is False
    assert [r.paired for r in unpaired_summary(engine, T0)] == []
    w.write([read("r2", study(), "negative", "F", T0 + timedelta(hours=2))])
    w.write([read("r3", study(), "positive", "C", T0 + timedelta(hours=5))])
    reads = _reads(engine)
    assert [(r.report_status, r.is_current) for r in reads] == [
        ("P", False),
        ("F", False),
        ("C", True),
    ]
    st = _study(engine)
    assert st.prelim_report_at == T0 and st.final_report_at == T0 + timedelta(hours=2)
    # an addendum later still supersedes; all in one batch works the same
    w.write(
        [
            read("r4", study(), "negative", "A", T0 + timedelta(hours=9)),
            read("r5", study(acc="A2"), "negative", "F", T0),
            read("r6", study(acc="A2"), "positive", "C", T0 + timedelta(hours=1)),
        ]
    )
    cur = [(r.report_status, r.label) for r in _reads(engine) if r.is_current]
    assert sorted(cur) == [("A", "negative"), ("C", "positive")]


def test_late_final_does_not_unseat_a_correction(engine):
    w = StoreWriter(engine, None)
    w.write([read("r1", study(), "positive", "C", T0 + timedelta(hours=5))])
    w.write([read("r2", study(), "negative", "F", T0 + timedelta(hours=6))])
    assert [(r.report_status, r.is_current) for r in _reads(engine)] == [
        ("C", True),
        ("F", False),
    ]


def test_latest_ai_message_wins_and_older_resend_does_not(engine):
    w = StoreWriter(engine, None)
    w.write([ai("m1", study(), 0.3, T0), ai("m2", study(), 0.8, T0 + timedelta(minutes=5))])
    w.write([ai("m0", study(), 0.1, T0 - timedelta(minutes=5))])  # older, arrives last
    with Session(engine) as s:
        (res,) = s.exec(select(AIResult)).scalars().all()
        assert res.score == 0.8 and res.call is True and "m2" in res.source_message_id


def test_duplicate_control_id_is_stored_once(engine):
    w = StoreWriter(engine, None)
    items = [read("r1", study(), "positive", "F", T0)]
    assert w.write(items) == [STORED]
    assert w.write(items + items) == [DUPLICATE, DUPLICATE]
    assert StoreWriter(engine, None).write(items) == [DUPLICATE]
    assert len(_reads(engine)) == 1
    with Session(engine) as s:
        assert len(s.exec(select(ReceivedMessage)).scalars().all()) == 1


def test_study_uid_fallback_then_accession_adopts_placeholder(engine):
    w = StoreWriter(engine, None)
    w.write([ai("m1", study(acc="", uid="1.2.840.99"), 0.7, T0)])
    w.write([ai("m2", study(acc="", uid="1.2.840.99"), 0.75, T0 + timedelta(minutes=1))])
    with Session(engine) as s:
        (st,) = s.exec(select(Study)).scalars().all()
        assert st.accession.startswith("uid:")
    w2 = StoreWriter(engine, None)
    w2.write([read("r1", study(acc="ACC9", uid="1.2.840.99"), "positive", "F", T0)])
    with Session(engine) as s:
        (st,) = s.exec(select(Study)).scalars().all()
        assert st.accession == "ACC9"
        (res,) = s.exec(select(AIResult)).scalars().all()
        assert res.study_id == st.id and res.score == 0.75
    # accession first, then a UID-only message finds the same study
    w2.write([read("r2", study(acc="ACC10", uid="1.2.840.100"), "negative", "F", T0)])
    w2.write([ai("m3", study(acc="", uid="1.2.840.100"), 0.1, T0)])
    with Session(engine) as s:
        assert len(s.exec(select(Study)).scalars().all()) == 2


def test_order_then_times_fill_in_and_patient_merge(engine):
    w = StoreWriter(engine, None)
    order = OrderEvent(
        study(ordered_at=T0, procedure_code="CTHEAD"),
        PatientInfo(pseudonym="old", sex="M", age_at_study=40),
    )
    w.write([Accepted(MappedMessage("RADIS^NGH", "o1", "ORM^O01", "radis", [order]))])
    later = study(exam_started_at=T0 + timedelta(hours=1), exam_ended_at=T0 + timedelta(hours=2))
    w.write(
        [
            read(
                "r1",
                later,
                "negative",
                "F",
                T0 + timedelta(hours=3),
                pat=PatientInfo(pseudonym="old"),
                read_started_at=T0 + timedelta(hours=2, minutes=30),
                read_ended_at=T0 + timedelta(hours=2, minutes=40),
            )
        ]
    )
    merge = PatientMerge(surviving="new", prior="old")
    w.write([Accepted(MappedMessage("RADIS^NGH", "a40", "ADT^A40", "radis", [merge]))])
    st = _study(engine)
    assert st.ordered_at == T0 and st.procedure_code == "CTHEAD"
    assert st.exam_started_at == T0 + timedelta(hours=1)
    assert st.read_ended_at == T0 + timedelta(hours=2, minutes=40)
    assert st.patient_pseudonym == "new"
    with Session(engine) as s:
        old = s.get(Patient, "old")
        assert old is not None and old.merged_into == "new" and old.sex == "M"


def test_indexed_study_columns_follow_the_newest_value_across_batches(engine):
    """UID, pseudonym and exam start (the study's indexed columns) follow the same rule as the
    rest: a newer non-null value wins, a message without one leaves the stored value, and the
    indexes find the row by its new value, not its old one."""
    w = StoreWriter(engine, None)
    first = study(uid="1.2.3.4", exam_started_at=T0)
    w.write([ai("m1", first, 0.9, T0)])
    moved = study(uid="1.2.3.9", exam_started_at=T0 + timedelta(hours=2))
    w.write([read("m2", moved, "positive", "F", T0, pat=PatientInfo(pseudonym="q" * 16))])
    w.write([read("m3", study(uid=None), "positive", "C", T0 + timedelta(hours=5))])
    st = _study(engine)
    assert st.study_uid == "1.2.3.9" and st.exam_started_at == T0 + timedelta(hours=2)
    assert st.patient_pseudonym == PAT.pseudonym  # m3's patient is PAT again: newest wins
    with Session(engine) as s:
        by_uid = s.exec(select(Study.id).where(Study.study_uid == "1.2.3.9")).scalars().all()
        by_old = s.exec(select(Study.id).where(Study.study_uid == "1.2.3.4")).scalars().all()
        by_time = (
            s.exec(select(Study.id).where(Study.exam_started_at == T0 + timedelta(hours=2)))
            .scalars()
            .all()
        )
    assert by_uid == [st.id] and by_old == [] and by_time == [st.id]


def _adt(ctrl: str, pat: PatientInfo):
    return Accepted(MappedMessage("RADIS^NGH", ctrl, "ADT^A08", "radis", [PatientUpdate(pat)]))


def test_two_writers_taking_turns_keep_the_newest_patient_facts(engine):
    """``vigil ingest``'s workers each hold a writer and take turns: a writer must not skip a
    patient's facts because it wrote the same ones before another writer changed them."""
    a, b = StoreWriter(engine, None), StoreWriter(engine, None)
    p = "z" * 16
    a.write([_adt("1", PatientInfo(pseudonym=p, sex="M", race="2106-3"))])
    b.write([_adt("2", PatientInfo(pseudonym=p, sex="F", race="2054-5"))])
    a.write([_adt("3", PatientInfo(pseudonym=p, sex="M"))])  # newest: M; race not sent
    with Session(engine) as s:
        got = s.get(Patient, p)
        assert got is not None and (got.sex, got.race) == ("M", "2054-5")


def test_a_writer_adopts_a_placeholder_another_writer_created(engine):
    """Writer ``a`` has written (and seen no UID-only study); writer ``b`` then creates one; the
    accession that ``a`` receives next must rename it, not open a second study."""
    a, b = StoreWriter(engine, None), StoreWriter(engine, None)
    a.write([ai("m0", study(acc="ACC1", uid="1.2.840.1"), 0.2, T0)])
    b.write([ai("m1", study(acc="", uid="1.2.840.2"), 0.7, T0)])
    a.write([read("r1", study(acc="ACC2", uid="1.2.840.2"), "positive", "F", T0)])
    with Session(engine) as s:
        accs = sorted(s.exec(select(Study.accession)).scalars().all())
        assert accs == ["ACC1", "ACC2"]
        (res,) = s.exec(select(AIResult).where(AIResult.score == 0.7)).scalars().all()
        assert s.get(Study, res.study_id).accession == "ACC2"


def test_a_batch_prepared_before_another_writer_claimed_part_of_it(engine):
    """``vigil ingest``'s workers prepare (fold) a piece before their turn. When another writer
    stores one of its messages in between, that message is a duplicate and its events must
    not be stored again: the prepared fold is dropped for the new messages alone."""
    a, b = StoreWriter(engine, None), StoreWriter(engine, None)
    mine = [
        ai("m1", study(acc="A1"), 0.1, T0 + timedelta(hours=1)),  # newer than b's m1 ...
        ai("m2", study(acc="A2"), 0.6, T0),
    ]
    prepared = a.prepare(mine)
    b.write([ai("m1", study(acc="A1"), 0.9, T0)])  # ... but b stored m1 first
    assert a.write_prepared(prepared) == [DUPLICATE, STORED]
    with Session(engine) as s:
        scores = {
            s.get(Study, r.study_id).accession: r.score
            for r in s.exec(select(AIResult)).scalars().all()
        }
    assert scores == {"A1": 0.9, "A2": 0.6}


def test_an_empty_batch_and_a_batch_without_studies_are_written(engine):
    """Neither has a row to compile a statement from (no ledger keys; no study rows)."""
    w = StoreWriter(engine, None)
    assert w.write([]) == []
    assert w.write([_adt("u1", PatientInfo(pseudonym="e" * 16, sex="F"))]) == [STORED]
    with Session(engine) as s:
        assert s.exec(select(Study)).scalars().all() == []
        assert s.get(Patient, "e" * 16).sex == "F"


def test_a_prepared_batch_survives_a_cache_reset_before_its_write(engine):
    """A retried batch (IntegrityError) resets the writer's caches after it was prepared: the
    models it names must still get their ids."""
    w = StoreWriter(engine, None)
    w.write([ai("m0", study(acc="A0"), 0.2, T0, model="lung-x")])
    prepared = w.prepare([ai("m1", study(acc="A1"), 0.8, T0, model="lung-x")])
    w._reset_caches()  # what write_prepared's retry does
    assert w.write_prepared(prepared) == [STORED]
    with Session(engine) as s:
        (model,) = s.exec(select(AIModel)).scalars().all()
        results = s.exec(select(AIResult)).scalars().all()
    assert model.name == "lung-x" and [r.model_id for r in results] == [model.id, model.id]


def test_placeholder_question_is_answered_from_the_partial_index(engine):
    """The once-a-batch question 'is any study known by UID alone?' must not scan the table."""
    from sqlalchemy import text

    from connectors.store_writer import PLACEHOLDER_PROBE

    sql = PLACEHOLDER_PROBE[engine.dialect.name]  # executed as text(), as the writer does
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        else:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: any plan is cheap
            plan = " ".join(str(r) for r in conn.execute(text("EXPLAIN " + sql)))
    assert "ix_study_placeholder" in plan, plan


def test_resend_after_dead_letter_is_stored_once_the_mapping_works(engine):
    from cryptography.fernet import Fernet

    from connectors.store_writer import DEADLETTER, Rejected
    from vigil.store.tables import DeadLetter

    key = Fernet.generate_key().decode()
    w = StoreWriter(engine, key)
    bad = Rejected("RADIS^NGH", "r1", "ORU^R01", "unknown_sender", "no profile", b"MSH|raw")
    assert w.write([bad]) == [DEADLETTER]
    assert w.write([bad]) == [DUPLICATE]  # resent while still failing: not dead-lettered twice
    assert w.write([read("r1", study(), "positive", "F", T0)]) == [STORED]
    assert w.write([read("r1", study(), "positive", "F", T0)]) == [DUPLICATE]
    assert len(_reads(engine)) == 1
    with Session(engine) as s:
        (dl,) = s.exec(select(DeadLetter)).scalars().all()
        assert dl.replay_outcome == "stored" and dl.replayed_at is not None
        assert Fernet(key.encode()).decrypt(dl.raw_encrypted) == b"MSH|raw"
        (led,) = s.exec(select(ReceivedMessage)).scalars().all()
        assert led.outcome == "stored"


ZONES = [UTC, timezone(timedelta(hours=1)), timezone(-timedelta(hours=5, minutes=30))]


@given(
    hst.datetimes(
        min_value=datetime(2, 1, 2),  # years below 1000 too: the text pads them to 4 digits
        max_value=datetime(9998, 12, 30),
        timezones=hst.sampled_from(ZONES),
    )
)
@settings(max_examples=200, deadline=None)
def test_fast_sqlite_timestamp_text_equals_sqlalchemys(value):
    from sqlalchemy.dialects import sqlite

    from connectors.rows import sqlite_utc_text
    from vigil.store.types import UTCDateTime

    dialect = sqlite.dialect()
    proc = UTCDateTime()._cached_bind_processor(dialect)
    assert sqlite_utc_text(value) == proc(value)
    with pytest.raises(ValueError):
        sqlite_utc_text(value.replace(tzinfo=None))
    # the batch fold keeps times as microseconds since the epoch: the same text, by arithmetic
    from connectors.rows import to_us

    assert sqlite_utc_text(to_us(value)) == proc(value)


@example(0)
@example(-1)  # 1969-12-31 23:59:59.999999: negative days round down
@example(951_782_400_000_000)  # 2000-02-29, a leap day of a 400-year leap year
@given(hst.integers(min_value=MIN_US, max_value=MAX_US))
@settings(max_examples=300, deadline=None)
def test_microseconds_text_equals_the_datetimes(us: int) -> None:
    """The fold's microsecond integers, years 1-9999: the text of the instant they stand for."""
    from sqlalchemy.dialects import sqlite

    from connectors.rows import from_us, sqlite_utc_text
    from vigil.store.types import UTCDateTime

    proc = UTCDateTime()._cached_bind_processor(sqlite.dialect())
    assert sqlite_utc_text(us) == proc(from_us(us))


def test_microseconds_outside_the_datetime_range_are_refused() -> None:
    from connectors.rows import sqlite_utc_text

    with pytest.raises(OverflowError):
        sqlite_utc_text(MAX_US + 1)
