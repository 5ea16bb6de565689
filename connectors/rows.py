"""Mapped messages as plain values, and a batch of them folded into the rows the store writes.

Kept apart from the store writer (which talks SQL) because this is the per-event Python of a
backfill: ``flatten`` runs once per message and ``fold`` once per event, in
``StoreWriter.prepare`` (a ``vigil ingest`` worker runs it before its turn to store; the listener
just before it writes). Both are pure functions over tuples and dicts, compiled with the rest of
the hot path (setup.py).
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from connectors.events import (
    AIResultEvent,
    MappedMessage,
    PatientInfo,
    PatientMerge,
    PatientUpdate,
    ReadEvent,
    StudyInfo,
)

# A mapped message flattened to plain tuples (see :func:`flatten`): what the batch fold reads.
# (Until 2026-11-28 this was also what ``vigil ingest``'s workers pickled to a separate writer
# process; tuples of str/float/int pickle in C, the event dataclasses cost several times more.)
FlatMessage = tuple[str, str, str, str, tuple[tuple[Any, ...], ...]]

# Study columns by how a later message updates them.
LATEST_COLS = (
    "study_uid",
    "patient_pseudonym",
    "modality",
    "procedure_code",
    "procedure_name",
    "scanner_manufacturer",
    "scanner_model",
    "patient_class",
    "age_at_study",
    "sex",
    "race",
    "ethnicity",
    "ordered_at",
    "exam_started_at",
    "exam_ended_at",
    "extra",
)  # a newer non-null value wins (order updates)
EARLIEST_COLS = ("prelim_report_at", "final_report_at")  # turnaround counts from the first one
FIRST_COLS = ("read_started_at", "read_ended_at")  # the read that made the first final
STUDY_COLS = LATEST_COLS + EARLIEST_COLS + FIRST_COLS

_STUDY_FIELDS = attrgetter(*(f.name for f in dataclass_fields(StudyInfo)))
_PATIENT_FIELDS = attrgetter(*(f.name for f in dataclass_fields(PatientInfo)))
_AI_FIELDS = attrgetter("model_name", "finding", "model_version", "score", "call", "received_at")
_READ_FIELDS = attrgetter(
    "finding",
    "label",
    "label_source",
    "evidence",
    "report_status",
    "radiologist",
    "reported_at",
    "read_started_at",
    "read_ended_at",
)
# positions in the flattened StudyInfo tuple
S_SITE, S_ACC, S_UID, S_EXTRA = 0, 1, 2, 12

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# the datetime range (years 1-9999, UTC) in microseconds since the epoch
MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _ONE_US
MAX_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_US


def to_us(value: datetime | None) -> Any:
    """An aware datetime as integer microseconds since the epoch (UTC).

    Integers compare and format (:func:`sqlite_utc_text`) several times faster than aware
    datetimes; :func:`from_us` turns one back. A naive datetime is passed through as it is, so
    the store still refuses it.
    """
    if value is None or value.tzinfo is None:
        return value
    return (value - _EPOCH) // _ONE_US


def from_us(value: Any) -> datetime | None:
    if type(value) is int:
        return _EPOCH + _ONE_US * value  # twice as fast as timedelta(microseconds=value)
    return value  # type: ignore[no-any-return]


def _flat_patient(p: PatientInfo | None) -> tuple[Any, ...] | None:
    return None if p is None else _PATIENT_FIELDS(p)  # type: ignore[no-any-return]


def flatten(m: MappedMessage) -> FlatMessage:
    """``m`` as (sender, control id, type, profile, events), every event a plain tuple.

    Events: ("U", patient), ("M", surviving, prior), ("O", study, patient),
    ("R", study, patient, model, finding, version, score, call, received_at) and
    ("F", study, patient, finding, label, source, evidence, status, radiologist, reported_at,
    read_started_at, read_ended_at); study and patient are their dataclasses' field tuples.
    """
    out: list[tuple[Any, ...]] = []
    for ev in m.events:
        cls = type(ev)
        if cls is PatientUpdate:
            out.append(("U", _flat_patient(ev.patient)))  # type: ignore[union-attr]
        elif cls is PatientMerge:
            out.append(("M", ev.surviving, ev.prior))  # type: ignore[union-attr]
        else:
            st: tuple[Any, ...] = _STUDY_FIELDS(ev.study)  # type: ignore[union-attr]
            st = (*st[:9], to_us(st[9]), to_us(st[10]), to_us(st[11]), st[12])
            pt = _flat_patient(ev.patient)  # type: ignore[union-attr]
            if cls is AIResultEvent:
                f: tuple[Any, ...] = _AI_FIELDS(ev)
                out.append(("R", st, pt, *f[:5], to_us(f[5])))
            elif cls is ReadEvent:
                g: tuple[Any, ...] = _READ_FIELDS(ev)
                out.append(("F", st, pt, *g[:6], to_us(g[6]), to_us(g[7]), to_us(g[8])))
            else:
                out.append(("O", st, pt))
    return (m.sender, m.control_id, m.message_type, m.profile, tuple(out))


def study_key_missing(mapped: MappedMessage) -> bool:
    """True when an event names a study by neither accession nor Study UID (cannot be paired)."""
    for ev in mapped.events:
        cls = type(ev)
        if cls is PatientUpdate or cls is PatientMerge:
            continue
        study = ev.study  # type: ignore[union-attr]
        if not study.accession and not study.study_uid:
            return True
        if not study.site_code:
            return True
    return False


def sqlite_utc_text(value: datetime | int | None) -> str | None:
    """What UTCDateTime + SQLAlchemy's SQLite DATETIME store for ``value``, in one step.

    ``value`` is an aware datetime or, as the batch fold keeps them, integer microseconds since
    the epoch (:func:`to_us`). Same refusal of naive times; a test checks the text equals
    SQLAlchemy's for many values.
    """
    if value is None:
        return None
    if type(value) is int:
        return _us_text(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Vigil stores timezone-aware UTC only")
    if value.utcoffset():
        value = value.astimezone(UTC)
    # Two-digit fields from a table and one string build: 'YYYY-MM-DD HH:MM:SS.ffffff' in a
    # fifth of the time of format specs or isoformat (which goes through C's printf).
    y = value.year
    year = str(y) if y >= 1000 else f"{y:04d}"
    d2 = _TWO_DIGITS
    return (
        f"{year}-{d2[value.month]}-{d2[value.day]} "
        f"{d2[value.hour]}:{d2[value.minute]}:{d2[value.second]}."
        f"{str(1_000_000 + value.microsecond)[1:]}"
    )


def _us_text(us: int) -> str:
    """:func:`sqlite_utc_text` of ``from_us(us)`` with integer arithmetic only (no datetime).

    The date is Howard Hinnant's ``civil_from_days`` (days since 1970-01-01 -> proleptic
    Gregorian y/m/d); a third of the time of building the datetime and formatting it.
    """
    if not MIN_US <= us <= MAX_US:
        raise OverflowError(f"{us} microseconds since 1970 is outside the years 1-9999")
    secs, micro = divmod(us, 1_000_000)
    days, sod = divmod(secs, 86_400)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (month <= 2)
    year = str(y) if y >= 1000 else f"{y:04d}"
    d2 = _TWO_DIGITS
    hour, rest = divmod(sod, 3600)
    minute, second = divmod(rest, 60)
    return (
        f"{year}-{d2[month]}-{d2[day]} {d2[hour]}:{d2[minute]}:{d2[second]}."
        f"{str(1_000_000 + micro)[1:]}"
    )


_TWO_DIGITS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(100))


# --- folding a batch ---------------------------------------------------------------------

# (position in the flattened StudyInfo, column): the fields after site and accession (the key)
# up to extra, which is merged apart
_STUDY_LATEST: tuple[tuple[int, str], ...] = tuple(
    (i, f.name) for i, f in enumerate(dataclass_fields(StudyInfo)) if 2 <= i < S_EXTRA
)
_PATIENT_LATEST = (
    (0, "patient_pseudonym"),
    (4, "age_at_study"),
    (1, "sex"),
    (2, "race"),
    (3, "ethnicity"),
)


def earliest(row: dict[str, Any], col: str, value: int | None) -> None:
    if value is not None and (row[col] is None or value < row[col]):
        row[col] = value


def merge_study(row: dict[str, Any], st: tuple[Any, ...], p: tuple[Any, ...] | None) -> None:
    """Fold one event's study facts into the batch's row (a newer non-null value wins)."""
    for i, name in _STUDY_LATEST:
        value = st[i]
        if value is not None:
            row[name] = value  # times stay microseconds (to_us) until the row is bound
    extra = st[S_EXTRA]
    if extra:
        row["extra"] = {**(row["extra"] or {}), **extra}
    if p is not None:
        for i, name in _PATIENT_LATEST:
            value = p[i]
            if value is not None:
                row[name] = value


def merge_patient(patients: dict[str, list[Any]], p: tuple[Any, ...] | None) -> None:
    """Fold one event's patient facts into the batch's patients (a newer non-null value wins)."""
    if p is None or not p[0]:
        return
    cur = patients.get(p[0])
    if cur is None:
        patients[p[0]] = [p[1], p[2], p[3]]
        return
    for i in range(3):
        v = p[i + 1]
        if v is not None:
            cur[i] = v


StudyKey = tuple[str, str]


class Folded:
    """A batch of flat messages folded into what the writer upserts, keyed as the store is.

    ``studies``: (site, accession) -> study row; ``patients``: pseudonym -> [sex, race,
    ethnicity]; ``merges``: (surviving, prior) in message order; ``results``: (study key, model,
    finding) -> the latest result's row; ``reads``: (study key, event, source message,
    reported_at) in message order; ``new_models``: model name -> registry row, for models the
    writer had not seen.
    """

    __slots__ = ("merges", "new_models", "patients", "reads", "results", "studies")

    def __init__(self) -> None:
        self.studies: dict[StudyKey, dict[str, Any]] = {}
        self.patients: dict[str, list[Any]] = {}
        self.merges: list[tuple[str, str]] = []
        self.results: dict[tuple[StudyKey, str, str], dict[str, Any]] = {}
        self.reads: list[tuple[StudyKey, tuple[Any, ...], str, int | None]] = []
        self.new_models: dict[str, dict[str, Any]] = {}


def uid_only_studies(messages: list[FlatMessage]) -> list[tuple[Any, ...]]:
    """Study tuples of events that name their study by Study Instance UID alone."""
    out: list[tuple[Any, ...]] = []
    for msg in messages:
        for ev in msg[4]:
            if ev[0] in "ORF":
                st = ev[1]
                if not st[S_ACC] and st[S_UID]:
                    out.append(st)
    return out


def fold(
    messages: list[FlatMessage],
    uid_keys: dict[StudyKey, StudyKey],
    known_models: dict[str, int],
    now: datetime,
) -> Folded:
    """Fold ``messages`` (in arrival order) into one batch of rows: the later fact wins, the
    earliest report time is kept, every read is kept (the writer decides which is current).

    Times stay integer microseconds since the epoch, as the workers sent them (:func:`to_us`):
    they compare as the instants do, and the writer's bind step turns them into the store's
    type (:func:`sqlite_utc_text`, :func:`from_us`) without a datetime in between.
    """
    now_us = to_us(now)
    out = Folded()
    studies = out.studies
    patients = out.patients
    results = out.results
    reads = out.reads
    new_models = out.new_models
    for msg in messages:
        src = f"{msg[0]}|{msg[1]}"[:200]
        for ev in msg[4]:
            kind = ev[0]
            if kind == "U":
                merge_patient(patients, ev[1])
                continue
            if kind == "M":
                out.merges.append((ev[1], ev[2]))
                continue
            st: tuple[Any, ...] = ev[1]
            pt: tuple[Any, ...] | None = ev[2]
            if st[S_ACC]:
                key: StudyKey = (st[S_SITE], st[S_ACC][:64])
            elif st[S_UID]:
                key = uid_keys[(st[S_SITE], st[S_UID])]
            else:
                continue  # cannot be paired; the pipeline dead-letters these
            row = studies.get(key)
            if row is None:
                row = studies[key] = dict.fromkeys(STUDY_COLS)
            merge_study(row, st, pt)
            merge_patient(patients, pt)
            if kind == "R":
                model_name: str = ev[3]
                finding: str = ev[4]
                version = ev[5] or ""
                received_at = ev[8]
                if model_name not in known_models and model_name not in new_models:
                    new_models[model_name] = {
                        "name": model_name[:100],
                        "finding": finding[:64],
                        "current_version": version[:64],
                    }
                rkey = (key, model_name, finding)
                prev = results.get(rkey)
                rec = received_at if received_at is not None else now_us
                if prev is None or prev["received_at"] <= rec:
                    results[rkey] = {
                        "model_version": version[:64],
                        "score": ev[6],
                        "call": ev[7],
                        "received_at": rec,
                        "source_message_id": src,
                    }
            elif kind == "F":
                status = (ev[7] or "F").upper()[:4]
                reported_at = ev[9]
                if status == "P":
                    earliest(row, "prelim_report_at", reported_at)
                else:
                    earliest(row, "final_report_at", reported_at)
                    if row["read_started_at"] is None:
                        row["read_started_at"] = ev[10]
                    if row["read_ended_at"] is None:
                        row["read_ended_at"] = ev[11]
                reads.append((key, ev, src, reported_at))
    return out
