"""Typed events: what the map layer makes of one HL7 message, and all the store layer sees.

No field here may hold a patient name, MRN, birth date or report text: the map layer has
already turned the MRN into a pseudonym, the birth date into an age at study, and the report
into a label with the phrase that decided it.

Events are values: nothing changes one after it is built (the mapper shares equal PatientInfo
objects between messages). They are not ``frozen=True`` dataclasses, though: a frozen
dataclass's ``__init__`` calls ``object.__setattr__`` once per field, which was 6.5 % of all the
instructions parse+map executes per message (bench/bench_instructions.py). ``unsafe_hash=True``
keeps them hashable, as frozen ones were; "unsafe" only if someone mutated one, which nothing does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True, unsafe_hash=True)
class PatientInfo:
    pseudonym: str | None = None
    sex: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    age_at_study: int | None = None  # years, from birth date and exam/order time; DOB not kept


@dataclass(slots=True, unsafe_hash=True)
class StudyInfo:
    site_code: str
    accession: str
    study_uid: str | None = None
    modality: str | None = None
    procedure_code: str | None = None
    procedure_name: str | None = None
    scanner_manufacturer: str | None = None
    scanner_model: str | None = None
    patient_class: str | None = None  # inpatient / outpatient / emergency
    ordered_at: datetime | None = None
    exam_started_at: datetime | None = None
    exam_ended_at: datetime | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True, unsafe_hash=True)
class PatientUpdate:
    """ADT A01/A04/A08/A31: demographics for a pseudonymous patient."""

    patient: PatientInfo


@dataclass(slots=True, unsafe_hash=True)
class PatientMerge:
    """ADT A40 (and A47): the prior pseudonym is merged into the surviving one."""

    surviving: str
    prior: str


@dataclass(slots=True, unsafe_hash=True)
class OrderEvent:
    """ORM^O01 / OMI^O23: a study is ordered (or its order updated)."""

    study: StudyInfo
    patient: PatientInfo


@dataclass(slots=True, unsafe_hash=True)
class AIResultEvent:
    """The AI vendor's ORU^R01: a score and call for one model and finding on one study."""

    study: StudyInfo
    patient: PatientInfo
    model_name: str
    finding: str
    model_version: str
    score: float | None
    call: bool | None
    received_at: datetime | None


@dataclass(slots=True, unsafe_hash=True)
class ReadEvent:
    """The RIS's ORU^R01 report reduced to a label per finding."""

    study: StudyInfo
    patient: PatientInfo
    finding: str
    label: str  # positive / negative / uncertain
    label_source: str  # coded / text
    evidence: str  # the code or phrase that decided the label (never the whole report)
    report_status: str  # P / F / C / A
    radiologist: str | None  # pseudonym
    reported_at: datetime | None
    read_started_at: datetime | None = None  # OBR-32 components, where the RIS fills them
    read_ended_at: datetime | None = None


Event = PatientUpdate | PatientMerge | OrderEvent | AIResultEvent | ReadEvent


@dataclass(slots=True)
class MappedMessage:
    """One message, mapped: who sent it, its id, and the events it carries."""

    sender: str  # MSH-3^MSH-4
    control_id: str  # MSH-10
    message_type: str  # e.g. ORU^R01
    profile: str  # the mapping profile that handled it
    events: list[Event] = field(default_factory=list)
    # "mapped" (events follow) or "ignored" (a valid message of a type or content Vigil does not
    # use, e.g. SIU, RSP, a lab result: ACK AA, ledger outcome "ignored", no events)
    outcome: str = "mapped"
    note: str = ""  # why it was ignored, for the ledger (never holds PHI)
