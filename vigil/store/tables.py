"""The store's tables (SQLModel). One module so that Alembic sees every table.

Conventions: every timestamp is a timezone-aware UTC ``UTCDateTime``; no table holds a patient
name, MRN, birth date or report text (patients are keyed HMAC pseudonyms, ages replace birth
dates, reports are reduced to a label, its source and the deciding phrase).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from vigil.store.types import UTCDateTime, utcnow


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


# --- hospital -----------------------------------------------------------------------------


class Site(SQLModel, table=True):
    """A hospital or imaging centre; namespaces accession numbers."""

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=200)


class Patient(SQLModel, table=True):
    """A pseudonymous patient: HMAC of (assigning authority, MRN). Demographics, never identity."""

    pseudonym: str = Field(primary_key=True, max_length=64)
    sex: str | None = Field(default=None, max_length=16)
    race: str | None = Field(default=None, max_length=64)
    ethnicity: str | None = Field(default=None, max_length=64)
    merged_into: str | None = Field(default=None, max_length=64)  # ADT^A40 merges
    updated_at: datetime | None = _ts()


# Studies known so far by their Study Instance UID alone carry a placeholder accession
# (connectors.store_writer.placeholder_accession) until a message brings the real one.
PLACEHOLDER_SQL = "accession LIKE 'uid:%' OR accession LIKE 'uid#%'"


class Study(SQLModel, table=True):
    """One imaging study (an accession at a site)."""

    __table_args__ = (
        UniqueConstraint("site_code", "accession", name="uq_study_site_accession"),
        # a partial index of the placeholder studies: every store writer asks, once a batch,
        # whether any exist (an empty index answers at once, at any store size)
        Index(
            "ix_study_placeholder",
            "site_code",
            sqlite_where=text(PLACEHOLDER_SQL),
            postgresql_where=text(PLACEHOLDER_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_code: str = Field(foreign_key="site.code", max_length=32)
    accession: str = Field(max_length=64)
    study_uid: str | None = Field(default=None, max_length=128, index=True)
    patient_pseudonym: str | None = Field(default=None, max_length=64, index=True)
    modality: str | None = Field(default=None, max_length=16)
    procedure_code: str | None = Field(default=None, max_length=64)
    procedure_name: str | None = Field(default=None, max_length=200)
    scanner_manufacturer: str | None = Field(default=None, max_length=100)
    scanner_model: str | None = Field(default=None, max_length=100)
    patient_class: str | None = Field(default=None, max_length=16)  # inpatient/outpatient/emergency
    age_at_study: int | None = None
    sex: str | None = Field(default=None, max_length=16)
    race: str | None = Field(default=None, max_length=64)
    ethnicity: str | None = Field(default=None, max_length=64)
    ordered_at: datetime | None = _ts()
    exam_started_at: datetime | None = _ts(index=True)
    exam_ended_at: datetime | None = _ts()
    prelim_report_at: datetime | None = _ts()
    final_report_at: datetime | None = _ts()
    read_started_at: datetime | None = _ts()  # OBR-32 components, only where the RIS fills them
    read_ended_at: datetime | None = _ts()
    extra: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # DICOM-derived inputs


# --- AI models ----------------------------------------------------------------------------


class AIModel(SQLModel, table=True):
    """The model card of a deployed model: the governance inventory's row."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    vendor: str = Field(default="", max_length=200)
    product: str = Field(default="", max_length=200)
    finding: str = Field(max_length=64)  # e.g. "ich", "lung_nodule"
    modality: str = Field(default="", max_length=16)
    body_part: str = Field(default="", max_length=64)
    intended_use: str = Field(default="")
    clearance_id: str = Field(default="", max_length=64)  # e.g. FDA 510(k) K-number, CE cert
    current_version: str = Field(default="", max_length=64)
    operating_threshold: float = 0.5
    baseline_sensitivity: float | None = None
    baseline_specificity: float | None = None
    baseline_auc: float | None = None
    baseline_ppv: float | None = None
    baseline_n: int | None = None
    baseline_period: str = Field(default="", max_length=64)
    target_sensitivity: float | None = None
    target_specificity: float | None = None
    go_live_date: date | None = None
    owner: str = Field(default="", max_length=200)
    status: str = Field(default="active", max_length=32)  # pilot/active/suspended/retired
    card: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # anything else on the card
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class AIModelVersion(SQLModel, table=True):
    """History of a model card: one row per version (and per card edit), never overwritten."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="aimodel.id", index=True)
    version: str = Field(max_length=64)
    first_seen_at: datetime | None = _ts()
    card_snapshot: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    changed_by: str = Field(default="", max_length=100)
    note: str = Field(default="")


class AIResult(SQLModel, table=True):
    """One AI output for one study and finding (the latest message wins)."""

    __table_args__ = (
        UniqueConstraint("study_id", "model_id", "finding", name="uq_airesult_study_model"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # no index of its own: uq_airesult_study_model starts with it (one index less per row)
    study_id: int = Field(foreign_key="study.id")
    model_id: int = Field(foreign_key="aimodel.id", index=True)
    finding: str = Field(max_length=64)
    model_version: str = Field(default="", max_length=64)
    score: float | None = None
    call: bool | None = None
    received_at: datetime | None = _ts(index=True)
    source_message_id: str = Field(default="", max_length=200)


class FinalRead(SQLModel, table=True):
    """The radiologist's read of one finding on one study (every version kept; one is current)."""

    __table_args__ = (Index("ix_finalread_current", "study_id", "finding", "is_current"),)

    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id")  # ix_finalread_current starts with it
    finding: str = Field(max_length=64)
    label: str = Field(max_length=16)  # positive / negative / uncertain
    label_source: str = Field(max_length=16)  # coded / text / adjudication
    evidence: str = Field(default="", max_length=300)  # the phrase or code that decided it
    report_status: str = Field(max_length=4)  # P / F / C / A (addendum)
    radiologist: str | None = Field(default=None, max_length=64)  # pseudonym
    reported_at: datetime | None = _ts()
    is_current: bool = True
    source_message_id: str = Field(default="", max_length=200)


# --- ingest bookkeeping -------------------------------------------------------------------


class ReceivedMessage(SQLModel, table=True):
    """Idempotency ledger: one row per (sender, MSH-10) ever accepted or dead-lettered."""

    __table_args__ = (UniqueConstraint("sender", "control_id", name="uq_received_sender_ctrl"),)

    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(max_length=200)  # MSH-3^MSH-4 (sending application and facility)
    control_id: str = Field(max_length=200)  # MSH-10
    message_type: str = Field(default="", max_length=32)
    profile: str = Field(default="", max_length=100)
    outcome: str = Field(default="stored", max_length=16)  # stored / deadletter / ignored
    received_at: datetime | None = _ts(index=True)


class DeadLetter(SQLModel, table=True):
    """A message Vigil could not parse or map: reason for people, raw bytes encrypted for replay."""

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime | None = _ts(index=True)
    sender: str = Field(default="", max_length=200)
    control_id: str = Field(default="", max_length=200)
    message_type: str = Field(default="", max_length=32)
    reason_code: str = Field(max_length=64, index=True)
    reason: str = Field(default="")
    raw_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    replayed_at: datetime | None = _ts()
    replay_outcome: str = Field(default="", max_length=64)


# --- monitoring ---------------------------------------------------------------------------


class Alert(SQLModel, table=True):
    """A monitor finding with a lifecycle: open -> acknowledged -> resolved."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, index=True)  # stable identity: re-runs update, not duplicate
    kind: str = Field(max_length=32, index=True)  # performance / drift / fairness / rescoring / ...
    model_id: int | None = Field(default=None, foreign_key="aimodel.id", index=True)
    subgroup: str = Field(default="", max_length=200)
    metric: str = Field(default="", max_length=64)
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    threshold: float | None = None
    severity: str = Field(default="warning", max_length=16)
    summary: str = Field(default="")
    evidence: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    status: str = Field(default="open", max_length=16, index=True)
    first_seen: datetime | None = _ts()
    last_seen: datetime | None = _ts()
    acknowledged_by: str | None = Field(default=None, max_length=100)
    acknowledged_at: datetime | None = _ts()
    acknowledge_note: str | None = None
    resolved_by: str | None = Field(default=None, max_length=100)
    resolved_at: datetime | None = _ts()
    resolve_note: str | None = None


class MonitorRun(SQLModel, table=True):
    """One `vigil monitor` run: its window and every result as JSON (pages and packs read it)."""

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime | None = _ts(index=True)
    finished_at: datetime | None = _ts()
    data_from: datetime | None = _ts()
    data_to: datetime | None = _ts()
    vigil_version: str = Field(default="", max_length=32)
    results: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class RescoreResult(SQLModel, table=True):
    """One case re-run through a re-scoring model."""

    __table_args__ = (
        UniqueConstraint("study_id", "model_id", "model_hash", name="uq_rescore_case"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=64, index=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    model_id: int = Field(foreign_key="aimodel.id", index=True)
    model_hash: str = Field(max_length=128)
    production_score: float | None = None
    rescore_score: float | None = None
    difference: float | None = None
    call_flip: bool | None = None
    runtime_ms: float | None = None
    device: str = Field(default="", max_length=32)
    error: str | None = None  # reason the case could not be scored
    saliency_path: str | None = Field(default=None, max_length=500)
    scored_at: datetime | None = _ts()


# --- governance ---------------------------------------------------------------------------


class ChecklistItem(SQLModel, table=True):
    """Readiness checklist item, per model or (model_id NULL) for the programme."""

    __table_args__ = (UniqueConstraint("model_id", "item_key", name="uq_checklist_item"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int | None = Field(default=None, foreign_key="aimodel.id", index=True)
    item_key: str = Field(max_length=64)
    title: str = Field(default="")
    status: str = Field(default="not_started", max_length=32)  # not_started/in_progress/done/na
    owner: str = Field(default="", max_length=100)
    evidence: str = Field(default="")
    updated_at: datetime | None = _ts()
    updated_by: str = Field(default="", max_length=100)


class ChecklistEvent(SQLModel, table=True):
    """History of checklist changes (status, owner, evidence) for the committee."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="checklistitem.id", index=True)
    at: datetime | None = _ts()
    by: str = Field(default="", max_length=100)
    status: str = Field(default="", max_length=32)
    note: str = Field(default="")


class User(SQLModel, table=True):
    """A local account (the embedded default); SSO deployments map the header user to a role."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    username: str = Field(primary_key=True, max_length=100)
    password_hash: str = Field(default="", max_length=200)
    role: str = Field(max_length=32)  # coe_member / quality_officer / administrator / admin
    created_at: datetime | None = _ts()


class Setting(SQLModel, table=True):
    """Editable application settings kept in the store (ROI inputs and the like)."""

    key: str = Field(primary_key=True, max_length=100)
    value: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    updated_at: datetime | None = _ts()
    updated_by: str = Field(default="", max_length=100)


class AuditLog(SQLModel, table=True):
    """Every write a person makes: who, what, when."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON)
