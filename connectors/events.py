"""Typed events: what the map layer makes of one HL7 message, and all the store layer sees.

No field here may hold a patient name, MRN, birth date or report text: the map layer has
already turned the MRN into a pseudonym, the birth date into an age at study, and the report
into a label with the phrase that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class PatientInfo:
    pseudonym: str | None = None
    sex: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    age_at_study: int | None = None  # years, from birth date and exam/order time; DOB not kept


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class PatientUpdate:
    """ADT A01/A04/A08/A31: demographics for a pseudonymous patient."""

    patient: PatientInfo


@dataclass(frozen=True, slots=True)
class PatientMerge:
    """ADT A40 (and A47): the prior pseudonym is merged into the surviving one."""

    surviving: str
    prior: str


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """ORM^O01 / OMI^O23: a study is ordered (or its order updated)."""

    study: StudyInfo
    patient: PatientInfo


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
